"""The token contract's permissions and batch rules, on a real anvil."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError, Web3RPCError

from mornet.chain.client import ChainClient
from mornet.chain.contracts import MAX_BATCH
from mornet.chain.node import LocalNode

UNIT = 10**18


class Token:
    def __init__(self, client: ChainClient, address: str) -> None:
        self.client = client
        self.contract = client.token(address)

    async def send(self, signer: LocalAccount, function: str, *args: Any) -> None:
        """Sign and send a call from `signer`; raises if the contract rejects it."""
        w3 = self.client.w3
        call = getattr(self.contract.functions, function)(*args)
        await call.estimate_gas({"from": signer.address})  # rejects with the revert reason
        tx = await call.build_transaction(
            {
                "from": signer.address,
                "nonce": await w3.eth.get_transaction_count(signer.address, "pending"),
                "gasPrice": await w3.eth.gas_price,
                "chainId": self.client.chain_id,
            }
        )
        tx_hash = await w3.eth.send_raw_transaction(signer.sign_transaction(tx).raw_transaction)
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1

    async def balance(self, address: str) -> int:
        value: int = await self.contract.functions.balanceOf(address).call()
        return value

    async def supply(self) -> int:
        value: int = await self.contract.functions.totalSupply().call()
        return value


@pytest.fixture
async def token(anvil: LocalNode) -> AsyncIterator[Token]:
    owner = Account.create()
    client = await ChainClient.connect(anvil.rpc_url, owner.key.hex())
    await client.fund_operator_on_dev_chain()
    address, _ = await client.deploy_token("MorNet Green Coin", "GCC")
    yield Token(client, address)
    await client.close()


async def funded(token: Token) -> LocalAccount:
    account = Account.create()
    await token.client.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])  # type: ignore[arg-type]
    return account


def batch(n: int) -> HexBytes:
    return HexBytes(n.to_bytes(32, "big"))


async def test_metadata_and_the_deployer_is_owner_and_minter(token: Token) -> None:
    functions = token.contract.functions
    assert await functions.name().call() == "MorNet Green Coin"
    assert await functions.symbol().call() == "GCC"
    assert await functions.decimals().call() == 18
    assert await functions.owner().call() == token.client.operator.address
    assert await functions.is_minter(token.client.operator.address).call() is True
    assert await functions.MAX_BATCH().call() == MAX_BATCH


async def test_minters_mint_burn_and_transfer_in_batches(token: Token) -> None:
    operator = token.client.operator
    alice, bob = Account.create().address, Account.create().address
    await token.send(operator, "mint_batch", batch(1), [alice, bob], [5 * UNIT, 7 * UNIT])
    await token.send(operator, "transfer_batch", batch(2), [alice], [bob], [2 * UNIT])
    await token.send(operator, "burn_batch", batch(3), [bob], [4 * UNIT])
    assert await token.balance(alice) == 3 * UNIT
    assert await token.balance(bob) == 5 * UNIT
    assert await token.supply() == 8 * UNIT
    assert await token.contract.functions.batch_executed(batch(2)).call() is True
    assert await token.contract.functions.batch_executed(batch(4)).call() is False


async def test_a_batch_id_never_executes_twice(token: Token) -> None:
    operator = token.client.operator
    alice = Account.create().address
    await token.send(operator, "mint_batch", batch(9), [alice], [UNIT])
    for function, args in [
        ("mint_batch", ([alice], [UNIT])),
        ("burn_batch", ([alice], [UNIT])),
        ("transfer_batch", ([alice], [Account.create().address], [UNIT])),
    ]:
        with pytest.raises(ContractLogicError, match="batch already executed"):
            await token.send(operator, function, batch(9), *args)
    assert await token.balance(alice) == UNIT
    assert await token.supply() == UNIT


async def test_only_minters_may_mint_burn_or_move(token: Token) -> None:
    stranger = await funded(token)
    victim = Account.create().address
    await token.send(token.client.operator, "mint_batch", batch(1), [victim], [UNIT])
    attempts = [
        ("mint_batch", (batch(2), [stranger.address], [UNIT])),
        ("burn_batch", (batch(3), [victim], [UNIT])),
        ("transfer_batch", (batch(4), [victim], [stranger.address], [UNIT])),
    ]
    for function, args in attempts:
        with pytest.raises(ContractLogicError, match="access is denied"):
            await token.send(stranger, function, *args)
    with pytest.raises(ContractLogicError, match="access is denied"):
        await token.send(stranger, "mint", stranger.address, UNIT)
    with pytest.raises(ContractLogicError, match="caller is not the owner"):
        await token.send(stranger, "set_minter", stranger.address, True)
    assert await token.balance(victim) == UNIT
    assert await token.balance(stranger.address) == 0


async def test_the_owner_grants_and_revokes_minters(token: Token) -> None:
    minter = await funded(token)
    await token.send(token.client.operator, "set_minter", minter.address, True)
    await token.send(minter, "mint_batch", batch(1), [minter.address], [UNIT])
    await token.send(token.client.operator, "set_minter", minter.address, False)
    with pytest.raises(ContractLogicError, match="access is denied"):
        await token.send(minter, "mint_batch", batch(2), [minter.address], [UNIT])
    assert await token.balance(minter.address) == UNIT


async def test_the_new_owner_decides_and_the_old_one_keeps_only_its_minter_role(
    token: Token,
) -> None:
    treasury = await funded(token)
    operator = token.client.operator
    await token.send(operator, "transfer_ownership", treasury.address)
    functions = token.contract.functions
    assert await functions.owner().call() == treasury.address
    assert await functions.is_minter(treasury.address).call() is True
    # The operator goes on minting for routine work, but no longer decides who may.
    assert await functions.is_minter(operator.address).call() is True
    await token.send(operator, "mint_batch", batch(1), [operator.address], [UNIT])
    with pytest.raises(ContractLogicError, match="caller is not the owner"):
        await token.send(operator, "set_minter", Account.create().address, True)
    with pytest.raises(ContractLogicError, match="caller is not the owner"):
        await token.send(operator, "set_protected", operator.address, False)
    # The new owner revokes it.
    await token.send(treasury, "set_minter", operator.address, False)
    with pytest.raises(ContractLogicError, match="access is denied"):
        await token.send(operator, "mint_batch", batch(2), [operator.address], [UNIT])


async def test_minters_batches_never_debit_a_protected_account(token: Token) -> None:
    treasury = await funded(token)
    operator = token.client.operator
    receiver = Account.create().address
    await token.send(operator, "mint_batch", batch(1), [treasury.address], [5 * UNIT])
    await token.send(operator, "set_protected", treasury.address, True)
    assert await token.contract.functions.protected(treasury.address).call() is True
    with pytest.raises(ContractLogicError, match="the account is protected"):
        await token.send(
            operator, "transfer_batch", batch(2), [treasury.address], [receiver], [UNIT]
        )
    with pytest.raises(ContractLogicError, match="the account is protected"):
        await token.send(operator, "burn_batch", batch(3), [treasury.address], [UNIT])
    # Paying into it is fine, and the account itself still spends its own tokens.
    await token.send(operator, "mint_batch", batch(4), [treasury.address], [UNIT])
    await token.send(treasury, "transfer", receiver, 2 * UNIT)
    assert await token.balance(treasury.address) == 4 * UNIT
    assert await token.balance(receiver) == 2 * UNIT


async def test_batches_are_bounded_and_consistent(token: Token) -> None:
    operator = token.client.operator
    accounts = [Account.create().address for _ in range(MAX_BATCH + 1)]
    with pytest.raises((ContractLogicError, Web3RPCError, ValueError)):
        await token.send(operator, "mint_batch", batch(1), accounts, [1] * len(accounts))
    with pytest.raises(ContractLogicError, match="length mismatch"):
        await token.send(operator, "mint_batch", batch(2), accounts[:2], [1])
    with pytest.raises(ContractLogicError, match="empty batch"):
        await token.send(operator, "mint_batch", batch(3), [], [])
    await token.send(operator, "mint_batch", batch(4), accounts[:MAX_BATCH], [1] * MAX_BATCH)
    assert await token.supply() == MAX_BATCH


async def test_a_burn_beyond_the_balance_reverts_the_whole_batch(token: Token) -> None:
    operator = token.client.operator
    alice, bob = Account.create().address, Account.create().address
    await token.send(operator, "mint_batch", batch(1), [alice, bob], [UNIT, UNIT])
    with pytest.raises(ContractLogicError, match="burn amount exceeds balance"):
        await token.send(operator, "burn_batch", batch(2), [alice, bob], [UNIT, 2 * UNIT])
    assert await token.balance(alice) == UNIT
    assert await token.contract.functions.batch_executed(batch(2)).call() is False


def test_the_public_rpc_url_hides_credentials() -> None:
    from unittest.mock import MagicMock

    client = ChainClient(
        w3=MagicMock(),
        operator=Account.create(),
        chain_id=80002,
        rpc_url="https://user:secret@rpc.example.net:8443/v1?apikey=abc",
    )
    assert client.public_rpc_url == "https://rpc.example.net:8443/v1"


async def test_eip2612_permit_lets_a_holder_approve_without_gas(token: Token) -> None:
    from eth_account.messages import encode_typed_data

    holder = Account.create()
    spender = await funded(token)
    await token.send(token.client.operator, "mint_batch", batch(1), [holder.address], [3 * UNIT])
    functions = token.contract.functions
    deadline = 2**40
    permit = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": "MorNet",
            "version": "1",
            "chainId": token.client.chain_id,
            "verifyingContract": token.contract.address,
        },
        "message": {
            "owner": holder.address,
            "spender": spender.address,
            "value": 2 * UNIT,
            "nonce": await functions.nonces(holder.address).call(),
            "deadline": deadline,
        },
    }
    signed = holder.sign_message(encode_typed_data(full_message=permit))
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
    args = (holder.address, spender.address, 2 * UNIT, deadline, signed.v, r, s)
    await token.send(spender, "permit", *args)
    assert await functions.allowance(holder.address, spender.address).call() == 2 * UNIT
    with pytest.raises(ContractLogicError, match="invalid signature"):
        await token.send(spender, "permit", *args)  # the nonce moved on: no replay
    await token.send(spender, "transferFrom", holder.address, spender.address, 2 * UNIT)
    assert await token.balance(spender.address) == 2 * UNIT

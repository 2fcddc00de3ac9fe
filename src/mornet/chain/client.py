"""One connection to the chain and the operator account that signs for the platform."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import ClientSession, ClientTimeout
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import Web3RPCError
from web3.types import RPCEndpoint

from mornet.chain.contracts import CompiledContract, compiled_token


@dataclass
class ChainClient:
    w3: AsyncWeb3[Any]
    operator: LocalAccount
    chain_id: int
    rpc_url: str
    _tokens: dict[str, AsyncContract] = field(default_factory=dict, repr=False)
    """Contract objects by address: building one parses the ABI, so each is built once."""

    @classmethod
    async def connect(cls, rpc_url: str, operator_key: str) -> ChainClient:
        provider = AsyncWeb3.AsyncHTTPProvider(
            rpc_url,
            # web3 checks every call's chain id with an `eth_chainId` of its own: asked once.
            cache_allowed_requests=True,
            cacheable_requests={RPCEndpoint("eth_chainId")},
        )
        # web3's default session closes its connection after every request (a new TCP
        # connection per call cost more than the call): one session whose connections persist.
        await provider.cache_async_session(
            ClientSession(raise_for_status=True, timeout=ClientTimeout(total=30))
        )
        w3 = AsyncWeb3(provider)
        chain_id = await w3.eth.chain_id
        return cls(
            w3=w3, operator=Account.from_key(operator_key), chain_id=chain_id, rpc_url=rpc_url
        )

    @property
    def public_rpc_url(self) -> str:
        """The RPC URL without credentials (user:password@ or ?key=…) for display."""
        parts = urlsplit(self.rpc_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    async def call_uint(self, to: str, data: bytes) -> int:
        """An `eth_call` at the latest block whose answer is one uint256, straight through the
        provider: web3's middleware (validation, formatting) cost twice the round trip."""
        [answer] = await self.call_uints([(to, data)])
        return answer

    async def call_uints(self, calls: Sequence[tuple[str, bytes]]) -> list[int]:
        """Many such calls in one JSON-RPC batch, answers in the order asked."""
        if not calls:
            return []
        requests = [
            (RPCEndpoint("eth_call"), [{"to": to, "data": "0x" + data.hex()}, "latest"])
            for to, data in calls
        ]
        provider = self.w3.provider
        answers: Any = (
            [await provider.make_request(*requests[0])]
            if len(requests) == 1
            else await provider.make_batch_request(requests)
        )
        if not isinstance(answers, list):  # the node refused the whole batch
            answers = [answers] * len(requests)
        values = []
        for answer in answers:
            if "error" in answer or "result" not in answer:
                raise Web3RPCError(f"eth_call failed: {answer.get('error', answer)}")
            result = answer["result"]
            values.append(int(result, 16) if result not in ("0x", "") else 0)
        return values

    def token(self, address: str) -> AsyncContract:
        if address not in self._tokens:
            compiled: CompiledContract = compiled_token()
            self._tokens[address] = self.w3.eth.contract(
                address=self.w3.to_checksum_address(address), abi=compiled.abi
            )
        return self._tokens[address]

    async def fund_operator_on_dev_chain(self) -> None:
        """Give the operator gas on anvil (a dev-only RPC method; real chains fund it for real)."""
        balance = await self.w3.eth.get_balance(self.operator.address)
        if balance < 10**21:
            await self.w3.provider.make_request(
                RPCEndpoint("anvil_setBalance"), [self.operator.address, hex(10**24)]
            )

    async def deploy_token(self, name: str, symbol: str) -> tuple[str, str]:
        """Deploy one token contract; waits for its receipt. Returns (address, tx hash)."""
        compiled = compiled_token()
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        tx: dict[str, Any] = await factory.constructor(name, symbol).build_transaction(
            {
                "from": self.operator.address,
                "nonce": await self.w3.eth.get_transaction_count(self.operator.address, "pending"),
                "chainId": self.chain_id,
                "gasPrice": await self.w3.eth.gas_price,
            }
        )
        signed = self.operator.sign_transaction(tx)
        tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise RuntimeError(f"deploying {symbol} failed in {tx_hash.to_0x_hex()}")
        return str(receipt["contractAddress"]), tx_hash.to_0x_hex()

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    async def has_code(self, address: str) -> bool:
        return len(await self.w3.eth.get_code(self.w3.to_checksum_address(address))) > 0

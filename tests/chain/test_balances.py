"""The balance book: balances shown from memory, and forgotten the moment the chain moves them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from eth_account import Account
from web3.types import RPCEndpoint

from mornet.chain.balances import TRANSFER_TOPIC, BalanceBook
from mornet.chain.service import ChainHandle
from mornet.runtime import Runtime
from tests.polling import eventually
from tests.wallets.test_api import fund, register

UNIT = 10**18
GCC = "0x00000000000000000000000000000000000000c1"


def _transfer_log(sender: str, receiver: str, contract: str = GCC) -> dict[str, Any]:
    def topic(address: str) -> bytes:
        return bytes(12) + bytes.fromhex(address.removeprefix("0x"))

    return {"address": contract, "topics": [TRANSFER_TOPIC, topic(sender), topic(receiver)]}


class CountingReader:
    def __init__(self) -> None:
        self.reads = 0
        self.balance = 7
        self.gate: asyncio.Event | None = None

    async def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return [self.balance for _ in pairs]


def _watching_book(reader: CountingReader) -> BalanceBook:
    book = BalanceBook(reader, contracts={"GCC": GCC})
    book._fresh_until = float("inf")  # as if the watcher had just looked
    return book


async def test_the_book_reads_once_and_again_only_after_a_move_names_the_address() -> None:
    reader = CountingReader()
    book = _watching_book(reader)
    holder, other = Account.create().address, Account.create().address
    assert await book.balances(holder, ["GCC"]) == {"GCC": 7}
    assert await book.balances(holder, ["GCC"]) == {"GCC": 7}
    assert reader.reads == 1

    reader.balance = 9
    book.forget_moved([_transfer_log(other, "0x" + "ab" * 20)])  # someone else's move
    assert await book.balances(holder, ["GCC"]) == {"GCC": 7}
    book.forget_moved([_transfer_log(other, holder, contract="0x" + "ee" * 20)])  # not ours
    assert await book.balances(holder, ["GCC"]) == {"GCC": 7}
    book.forget_moved([_transfer_log(other, holder)])
    assert await book.balances(holder, ["GCC"]) == {"GCC": 9}
    assert reader.reads == 2


async def test_a_read_overtaken_by_a_move_is_not_kept() -> None:
    reader = CountingReader()
    book = _watching_book(reader)
    holder = Account.create().address
    reader.gate = asyncio.Event()
    reading = asyncio.create_task(book.balances(holder, ["GCC"]))
    await asyncio.sleep(0)
    book.forget_moved([_transfer_log(holder, "0x" + "ab" * 20)])  # lands while the read runs
    reader.gate.set()
    assert await reading == {"GCC": 7}
    reader.gate = None
    reader.balance = 4
    assert await book.balances(holder, ["GCC"]) == {"GCC": 4}  # read again, not the old 7


async def test_without_a_current_watcher_every_view_reads_the_chain() -> None:
    reader = CountingReader()
    book = BalanceBook(reader, contracts={"GCC": GCC})  # the watcher never looked
    holder = Account.create().address
    await book.balances(holder, ["GCC"])
    await book.balances(holder, ["GCC"])
    assert reader.reads == 2


async def test_the_wallet_shows_platform_moves_at_once_and_direct_chain_moves_promptly(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle
) -> None:
    headers = await register(client, "bella@example.com")
    await register(client, "carl@example.com")
    wallet = (await client.get("/api/wallet", headers=headers)).json()
    assert wallet["balances"]["GCC"] == "0"
    assert (await client.get("/api/wallet", headers=headers)).json()["balances"]["GCC"] == "0"

    # The platform's own move: shown as soon as its operation is confirmed.
    await fund(runtime, chain, "bella@example.com", "5")
    assert (await client.get("/api/wallet", headers=headers)).json()["balances"]["GCC"] == "5"

    # A move made on chain by the key holder, past the platform: the watcher sees its log.
    sender = wallet["address"]
    receiver = Account.create().address
    w3 = chain.client.w3
    await w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [sender, hex(10**18)])
    await w3.provider.make_request(RPCEndpoint("anvil_impersonateAccount"), [sender])
    token = chain.client.token(chain.contracts["GCC"])
    sent = await token.functions.transfer(receiver, 2 * UNIT).transact({"from": sender})
    await w3.eth.wait_for_transaction_receipt(sent)

    async def shown() -> bool:
        answer = await client.get("/api/wallet", headers=headers)
        return bool(answer.json()["balances"]["GCC"] == "3")

    await eventually(shown, within=3)

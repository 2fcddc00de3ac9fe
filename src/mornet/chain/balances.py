"""Balances to show, kept per process and dropped when the chain says they moved.

A wallet page or dashboard wants five balances per view, many times a day; reading them from
the node each time costs a JSON-RPC round trip per request. The book keeps each address's
balances and forgets an address as soon as a `Transfer` of one of the platform's tokens names
it: the watcher reads the new blocks' `Transfer` logs every quarter second (moves made directly
on chain included), and the submitter forgets the addresses of each receipt it confirms, so the
platform's own moves show at once. An entry also expires after `max_age_s`, which bounds what a
chain reorganisation could leave stale.

Decisions about money (is a balance enough to spend?) never read the book: they read the chain
(`ChainHandle.balance_of`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import structlog
from hexbytes import HexBytes

log = structlog.get_logger(__name__)

TRANSFER_TOPIC = HexBytes("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
"""keccak256("Transfer(address,address,uint256)")."""

ReadBalances = Callable[[Sequence[tuple[str, str]]], Awaitable[list[int]]]


def _address_of(topic: Any) -> str:
    return "0x" + bytes(HexBytes(topic))[-20:].hex()


def moved_addresses(logs: Iterable[Any], contracts: Iterable[str]) -> set[str]:
    """The addresses (lower case) that `Transfer` logs of `contracts` name as sender or
    receiver."""
    watched = {c.lower() for c in contracts}
    moved: set[str] = set()
    for entry in logs:
        topics = entry["topics"]
        if (
            str(entry["address"]).lower() in watched
            and len(topics) == 3
            and HexBytes(topics[0]) == TRANSFER_TOPIC
        ):
            moved.add(_address_of(topics[1]))
            moved.add(_address_of(topics[2]))
    return moved


class BalanceBook:
    def __init__(
        self,
        read: ReadBalances,
        *,
        contracts: dict[str, str],
        max_age_s: float = 30,
        max_entries: int = 50_000,
    ) -> None:
        self._read = read
        self.contracts = contracts
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, dict[str, int]]] = {}
        self._epoch = 0
        """Moves on every forget: a read that started before it must not be kept."""
        self._head: int | None = None
        self._fresh_until = 0.0
        """Until when the watcher's view is current enough for entries to be used."""

    @property
    def epoch(self) -> int:
        """Moves on every forget."""
        return self._epoch

    @property
    def watching(self) -> bool:
        return time.monotonic() < self._fresh_until

    async def balances(self, address: str, tokens: Sequence[str]) -> dict[str, int]:
        """`tokens`' balances of `address`, from the book when it may be trusted, else read
        in one JSON-RPC batch (and kept)."""
        key = address.lower()
        if self.watching:
            kept = self._entries.get(key)
            if (
                kept is not None
                and time.monotonic() - kept[0] < self.max_age_s
                and all(t in kept[1] for t in tokens)
            ):
                return {t: kept[1][t] for t in tokens}
        epoch, started = self._epoch, time.monotonic()
        read = dict(zip(tokens, await self._read([(t, address) for t in tokens]), strict=True))
        if self.watching and epoch == self._epoch:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (started, read)
        return read

    def forget(self, addresses: Iterable[str]) -> None:
        self._epoch += 1
        for address in addresses:
            self._entries.pop(address.lower(), None)

    def forget_all(self) -> None:
        self._epoch += 1
        self._entries.clear()

    def forget_moved(self, logs: Iterable[Any]) -> None:
        """Forget whoever `logs` (of a receipt or a block range) show moving tokens."""
        moved = moved_addresses(logs, self.contracts.values())
        if moved:
            self.forget(moved)

    async def watch(self, w3: Any) -> None:
        """One look at the chain: forget the addresses moved in the blocks since the last."""
        head = int(await w3.eth.block_number)
        if self._head is None or head < self._head:
            self.forget_all()  # a first look, or the chain went back: nothing is known
        elif head > self._head:
            logs = await w3.eth.get_logs(
                {
                    "fromBlock": self._head + 1,
                    "toBlock": head,
                    "address": list(self.contracts.values()),
                    "topics": [TRANSFER_TOPIC],
                }
            )
            self.forget_moved(logs)
        self._head = head

    async def watch_forever(self, w3: Any, *, every_s: float = 0.25) -> None:
        while True:
            try:
                await self.watch(w3)
                self._fresh_until = time.monotonic() + 4 * every_s
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: read the chain directly
                self._fresh_until = 0.0
                self.forget_all()
                log.warning("chain.balance_watch_failed", error=str(error))
            await asyncio.sleep(every_s)

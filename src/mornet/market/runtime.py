"""The market's worker inside a process: the batcher that puts trades on chain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.chain import service as chain
from mornet.db import unit_of_work
from mornet.market import service

log = structlog.get_logger(__name__)


async def batch_round(
    sessions: async_sessionmaker[AsyncSession], handle: chain.ChainHandle | None
) -> int:
    """Batch every trade waiting (in rounds of up to 1,024). Returns how many."""
    batched = 0
    while True:
        async with unit_of_work(sessions) as session:
            count = await service.batch_trades(session, handle)
        batched += count
        if count == 0:
            return batched


async def batches_forever(
    sessions: async_sessionmaker[AsyncSession],
    chain_of: Callable[[], chain.ChainHandle | None],
    *,
    every_seconds: float = 1.0,
) -> None:
    """Every `every_seconds`, move the tokens of the trades made since: many fills share one
    transfer per token, which is what lets the book trade faster than the chain mines. (A
    trade is final in the book and its tokens held at once; a second is how long its move
    may wait to be sent, and a shorter wait cost the book a tenth of its orders per second
    in the submitter's work.)"""
    while True:
        try:
            if (handle := chain_of()) is not None:
                await batch_round(sessions, handle)
        except Exception:
            log.exception("market.batch_failed")
        await asyncio.sleep(every_seconds)

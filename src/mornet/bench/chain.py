"""`mornet bench chain`: token moves per second through the real outbox and submitter, against
a fresh local anvil, one transaction per move versus batches."""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account

from mornet.bench.harness import scratch_chain, scratch_directory, scratch_sqlite
from mornet.chain import service as chain
from mornet.chain.client import ChainClient
from mornet.chain.schemas import OperationKind
from mornet.chain.submitter import Submitter
from mornet.db import create_engine, create_sessionmaker, unit_of_work


async def _timed_mints(
    sessions: Any, handle: chain.ChainHandle, batches: list[list[str]], label: str
) -> float:
    started = time.perf_counter()
    async with unit_of_work(sessions) as session:
        for index, receivers in enumerate(batches):
            await chain.enqueue(
                session,
                chain_id=handle.chain_id,
                signer=handle.signer,
                token="GCC",
                kind=OperationKind.MINT,
                moves=[chain.Move(amount=10**18, receiver=r) for r in receivers],
                idempotency_key=f"bench:{label}:{index}",
            )
    await handle.submitter.drain(max_seconds=600)
    return time.perf_counter() - started


async def run_chain_benchmark(*, accounts: int, single: int, batch_size: int) -> dict[str, Any]:
    batch_size = max(1, min(batch_size, 256))
    with scratch_directory() as scratch:
        async with scratch_sqlite(scratch) as database, scratch_chain() as node:
            engine = create_engine(database)
            try:
                sessions = create_sessionmaker(engine)
                client = await ChainClient.connect(node.rpc_url, Account.create().key.hex())
                await client.fund_operator_on_dev_chain()
                async with unit_of_work(sessions) as session:
                    contracts = await chain.ensure_deployed(session, client)
                submitter = Submitter(sessions, client, contracts)
                handle = chain.ChainHandle(client, contracts, submitter)

                one_by_one = [[Account.create().address] for _ in range(single)]
                single_seconds = await _timed_mints(sessions, handle, one_by_one, "single")
                receivers = [Account.create().address for _ in range(accounts)]
                batched = [receivers[i : i + batch_size] for i in range(0, accounts, batch_size)]
                batched_seconds = await _timed_mints(sessions, handle, batched, "batched")

                minted = await handle.total_supply("GCC")
                expected = (single + accounts) * 10**18
                await client.close()
            finally:
                await engine.dispose()
    single_per_s = single / single_seconds
    batched_per_s = accounts / batched_seconds
    return {
        "benchmark": "chain",
        "measured": "GCC mints through the outbox and submitter to a local anvil (automine), "
        "from enqueue to confirmed receipt",
        "single_moves": single,
        "single_seconds": round(single_seconds, 3),
        "single_per_s": round(single_per_s, 1),
        "batched_accounts": accounts,
        "batch_size": batch_size,
        "batched_transactions": len(batched),
        "batched_seconds": round(batched_seconds, 3),
        "batched_per_s": round(batched_per_s, 1),
        "ratio": round(batched_per_s / single_per_s, 1),
        "supply_matches": minted == expected,
    }

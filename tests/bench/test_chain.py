"""The chain benchmark runs end to end on a small load and reports what it measured."""

from __future__ import annotations

from mornet.bench.chain import run_chain_benchmark


async def test_the_chain_benchmark_mints_what_it_reports() -> None:
    result = await run_chain_benchmark(accounts=30, single=3, batch_size=16)
    assert result["benchmark"] == "chain"
    assert result["supply_matches"] is True
    assert result["single_moves"] == 3
    assert result["batched_accounts"] == 30
    assert result["batched_transactions"] == 2
    assert result["single_per_s"] > 0
    assert result["batched_per_s"] > 0

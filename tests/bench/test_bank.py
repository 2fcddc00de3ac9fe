"""The bank benchmark drives a real `mornet up` end to end and reports what it measured."""

from __future__ import annotations

from decimal import Decimal

from mornet.bench.bank import run_bank_benchmark


async def test_the_bank_benchmark_pays_every_deposit_and_checks_the_reserves() -> None:
    result = await run_bank_benchmark(
        notifications=12, rate=40, deposits=16, concurrency=8, users=2, postgres_url=None
    )
    notifications = result["notifications"]
    assert notifications["not_ok"] == 0
    assert 0 < notifications["ok_p50_ms"] <= notifications["ok_p99_ms"]
    deposits = result["deposits"]
    assert deposits["count"] == 16
    assert deposits["end_to_end_per_s"] > 0
    # Every role's CPU is read from its process; the platform and the load did work.
    cpu = deposits["cpu_ms_per_deposit"]
    assert set(cpu) == {"platform", "chain_node", "postgresql", "load"}
    assert cpu["platform"] > 0
    assert cpu["load"] > 0
    assert result["reserves"]["ok"] is True
    # 100 RUB per deposit, notified and paid: GCC on chain equals the roubles held.
    assert Decimal(result["reserves"]["gcc_total_supply"]) == 100 * (12 + 16)
    assert Decimal(result["reserves"]["escrow_rub"]) == 100 * (12 + 16)

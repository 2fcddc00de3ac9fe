"""The settlement benchmark settles what it seeds, on chain, and reports it."""

from __future__ import annotations

import pytest
from sqlalchemy import make_url

from mornet.bench.settle import run_settle_benchmark
from tests.conftest import BACKENDS, POSTGRES_URL


@pytest.mark.parametrize("engine", BACKENDS)
async def test_the_settlement_benchmark_settles_and_confirms_every_household(engine: str) -> None:
    server = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
    result = await run_settle_benchmark(
        households_count=40, owners=7, postgres_url=server if engine == "postgresql" else None
    )
    assert result["database"] == engine
    assert result["settled"] == 40
    assert result["confirmed"] == 40
    assert result["supply_matches"] is True
    assert result["rated_household_days_per_s"] > 0
    assert result["settled_households_per_s"] > 0

"""The analytics benchmark seeds what it says and measures every route it reports."""

from __future__ import annotations

from mornet.bench.analytics import run_analytics_benchmark


async def test_the_analytics_benchmark_seeds_and_measures_what_it_reports() -> None:
    result = await run_analytics_benchmark(
        households_count=4, days=2, clients=2, requests=6, postgres_url=None
    )
    assert result["hourly_rows"] == 4 * 2 * 24 * 3
    assert result["series_points"] >= 3 * 2 * 24  # use of E, H and W in every hour
    for route in ("healthz", "summary", "series_30d", "dashboard"):
        figures = result[route]
        assert figures["per_s"] > 0, route
        assert 0 < figures["p50_ms"] <= figures["p95_ms"], route
    assert result["summary"]["vs_healthz"] == round(
        result["summary"]["per_s"] / result["healthz"]["per_s"], 2
    )
    assert isinstance(result["targets_met"], bool)

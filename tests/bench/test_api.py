"""The API benchmark reads wrk's report faithfully and measures every route it lists."""

from __future__ import annotations

import pytest

from mornet.bench.api import parse_wrk, run_api_benchmark

REPORT = """Running 10s test @ http://127.0.0.1:8000/api/me
  1 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.10ms    3.20ms  40.00ms   80.00%
    Req/Sec     1.60k   100.00     1.80k    70.00%
  Latency Distribution
     50%   11.50ms
     75%   13.00ms
     90%   15.00ms
     99%    1.20s
  16000 requests in 10.00s, 4.00MB read
Requests/sec:   1600.25
Transfer/sec:    409.60KB
"""


def test_wrk_reports_are_read_with_their_units_and_failures_refused() -> None:
    assert parse_wrk(REPORT) == {"per_s": 1600.2, "p50_ms": 11.5, "p99_ms": 1200.0}
    assert parse_wrk(REPORT.replace("11.50ms", "950.00us"))["p50_ms"] == 0.95
    with pytest.raises(RuntimeError, match="Non-2xx"):
        parse_wrk(REPORT + "  Non-2xx or 3xx responses: 12\n")
    with pytest.raises(RuntimeError, match="could not be read"):
        parse_wrk(REPORT.replace("Requests/sec", "Reqs"))


async def test_the_api_benchmark_measures_every_listed_read_beside_healthz() -> None:
    result = await run_api_benchmark(connections=4, seconds=1, postgres_url=None)
    routes = result["routes"]
    assert set(routes) == {
        "healthz",
        "me",
        "households",
        "household",
        "tariffs",
        "wallet",
        "dashboard",
    }
    for name, figures in routes.items():
        assert figures["per_s"] > 0, name
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], name
        assert figures["vs_healthz"] == round(figures["per_s"] / routes["healthz"]["per_s"], 2)
    assert isinstance(result["targets_met"], bool)

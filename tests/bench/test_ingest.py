"""The ingest benchmark drives the real pipeline step by step and reports each step's
figures, with the CPU each process spent."""

from __future__ import annotations

from sqlalchemy import make_url

from mornet.bench.ingest import run_ingest_benchmark
from tests.brokers import AMQP_URL
from tests.conftest import POSTGRES_URL


async def _run(*, embedded: bool, processes: int = 1) -> dict[str, object]:
    server = make_url(POSTGRES_URL).set(database="postgres").render_as_string(hide_password=False)
    return await run_ingest_benchmark(
        duration=3,
        households=4,
        readings_per_s=[400.0, 800.0],
        batch=10,
        devices=3,
        postgres_url=server,
        amqp_url=AMQP_URL,
        mosquitto=None,
        embedded=embedded,
        processes=processes,
        baseline=False,
    )


def _check(result: dict[str, object], processes: set[str]) -> None:
    steps = result["steps"]
    assert isinstance(steps, list)
    # The sweep goes on after a passing step and stops after a failing one.
    rates = [s["offered_readings_per_s"] for s in steps]
    assert rates == ([400.0, 800.0] if steps[0]["passed"] else [400.0])
    for step in steps:
        # Every reading sent was stored once, and the step says so; whether it passed
        # follows from its own latency (a timing this test does not hold the machine to).
        assert step["sent_readings"] > 0
        assert step["stored_readings"] == step["sent_readings"]
        assert step["lost"] == step["duplicated"] == 0
        assert step["passed"] is (step["p99_latency_s"] <= 2.0)
        assert set(step["cpu_s_per_1000_readings"]) == processes
        assert step["cpu_s_per_1000_readings"]["load"] > 0
    passing = [s["offered_readings_per_s"] for s in steps if s["passed"]]
    assert result["highest_passing_readings_per_s"] == max(passing, default=0)


async def test_the_ingest_benchmark_on_the_embedded_default() -> None:
    result = await _run(embedded=True)
    assert result["engines"] == "embedded"
    _check(result, {"embedded", "load"})


async def test_two_gateways_and_two_consumers_store_every_reading_once() -> None:
    # The gateways split the stream through the shared subscription, the consumers the
    # queue; the household locks keep the use arithmetic exact between them.
    result = await _run(embedded=False, processes=2)
    assert result["engines"] == "production"
    _check(
        result,
        {"consumer1", "consumer2", "gateway1", "gateway2", "broker", "rabbitmq", "postgresql"}
        | {"load"},
    )

"""`mornet bench ingest`: agents' traffic through the real pipeline — Mosquitto → gateway
process → RabbitMQ → consumer process → PostgreSQL — measured end to end, next to a bare
subscriber on the same broker under the same load."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from mornet.bench.harness import (
    peak_rss_mb,
    percentile,
    scratch_directory,
    scratch_mosquitto,
    scratch_postgres,
)
from mornet.wire.telemetry import encode, private_key, sign, telemetry_topic

# --- the load: agents publishing signed batches at a fixed rate -------------------------


def _load(
    port: int,
    agents: list[dict[str, str]],
    rate: float,
    duration: float,
    batch: int,
    devices: int,
    prefix: str,
    counter: Any,
    peak_rss_kb: Any = None,
) -> None:
    """One process publishing `rate` messages/s of `batch` readings, spread over the agents."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-load-{prefix}"
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    seqs = [0] * len(agents)
    keys = [private_key(agent["secret"]) for agent in agents]
    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < duration:
        due = int(elapsed * rate) + 1
        while sent < due:
            index = sent % len(agents)
            agent = agents[index]
            now = datetime.now(UTC).isoformat()
            readings = []
            for _ in range(batch):
                seq = seqs[index]
                seqs[index] += 1
                readings.append(
                    {
                        "device_id": f"{prefix}-d{seq % devices}",
                        "resource": "E",
                        "ts": now,
                        "seq": seq,
                        "power_w": 100.0,
                        "energy_wh": float(seq),
                        "voltage_v": 230.0,
                        "current_a": 0.43,
                    }
                )
            message = sign({"agent_id": agent["agent_id"], "readings": readings}, keys[index])
            client.publish(telemetry_topic(agent["household_id"]), encode(message), qos=1)
            sent += 1
        time.sleep(0.001)
    while client.want_write():
        time.sleep(0.01)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    with counter.get_lock():
        counter.value += sent
    if peak_rss_kb is not None:
        peak_rss_kb.value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _bare_subscriber(port: int, duration: float, result: Any) -> None:
    received = 0

    def on_message(*_: Any) -> None:
        nonlocal received
        received += 1

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=True
    )
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("mornet/+/telemetry", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(duration)
    client.loop_stop()
    result.value = received


# --- the pipeline roles, each in its own process -----------------------------------------


def _role(role: str, env: dict[str, str]) -> None:
    os.environ.update(env)
    from mornet.bus import open_bus
    from mornet.config import Settings
    from mornet.db import create_engine, create_sessionmaker
    from mornet.telemetry.runtime import start_telemetry

    async def main() -> None:
        settings = Settings()
        engine = create_engine(settings.resolved_database_url())
        events = open_bus(settings)
        telemetry = await start_telemetry(
            settings,
            create_sessionmaker(engine),
            events,
            gateway=role == "gateway",
            consumer=role == "consumer",
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await telemetry.close()
        await events.close()
        await engine.dispose()

    asyncio.run(main())


async def _provision(database_url: str, households: int) -> list[dict[str, str]]:
    from mornet.db import create_engine, create_sessionmaker, unit_of_work
    from mornet.households import service as households_service
    from mornet.identity import service as identity

    engine = create_engine(database_url)
    agents = []
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            owner = await identity.register(
                session,
                email=f"bench-{uuid.uuid4().hex[:8]}@mornet.local",
                password="bench-password",
                full_name="Benchmark",
            )
            for index in range(households):
                home = await households_service.create_household(
                    session, owner=owner, name=f"bench {index}", address="-", region_code="RU-MOW"
                )
                agent = await households_service.register_agent(
                    session, actor=owner, household_id=home.id, name="bench", mqtt_url="-"
                )
                agents.append(
                    {
                        "household_id": str(home.id),
                        "agent_id": str(agent.agent.id),
                        "secret": agent.secret,
                    }
                )
    finally:
        await engine.dispose()
    return agents


async def _delete_queue(amqp_url: str, queue: str) -> None:
    import aio_pika

    from mornet.bus import dead_letter_queue

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.queue_delete(dead_letter_queue(queue))


async def _measure(database_url: str) -> dict[str, Any]:
    from sqlalchemy import text

    from mornet.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT extract(epoch FROM received_at - ts), "
                        "extract(epoch FROM received_at) FROM telemetry_readings "
                        "WHERE device_id LIKE 'run-%'"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    latencies = [float(r[0]) for r in rows]
    stored_at = [float(r[1]) for r in rows]
    return {"stored": len(rows), "latencies": latencies, "stored_at": stored_at}


async def run_ingest_benchmark(
    *,
    duration: float,
    households: int,
    rate: float,
    batch: int,
    devices: int,
    postgres_url: str,
    amqp_url: str,
    mosquitto: str | None,
) -> dict[str, Any]:
    queue = f"bench.readings.{os.getpid()}"
    children: list[Any] = []
    with scratch_directory() as scratch:
        async with (
            scratch_mosquitto(scratch, mosquitto) as port,
            scratch_postgres(postgres_url, f"mornet_bench_{os.getpid()}") as bench_url,
        ):
            try:
                agents = await _provision(bench_url, households)
                env = {
                    "MORNET_DATABASE_URL": bench_url,
                    "MORNET_AMQP_URL": amqp_url,
                    "MORNET_MQTT_URL": f"mqtt://127.0.0.1:{port}",
                    "MORNET_DATA_DIR": str(scratch),
                    "MORNET_MQTT_CLIENT_ID": f"bench-gateway-{os.getpid()}",
                    "MORNET_READINGS_QUEUE": queue,
                }
                context = multiprocessing.get_context("spawn")
                # Phase 1: a bare subscriber under the same load, for the broker's own ceiling.
                sent_baseline = context.Value("q", 0)
                received = context.Value("q", 0)
                baseline_seconds = min(duration, 10)
                bare = context.Process(
                    target=_bare_subscriber, args=(port, baseline_seconds + 2, received)
                )
                bare.start()
                await asyncio.sleep(1)
                load = context.Process(
                    target=_load,
                    args=(
                        port,
                        agents,
                        rate,
                        baseline_seconds,
                        batch,
                        devices,
                        "base",
                        sent_baseline,
                    ),
                )
                load.start()
                await asyncio.to_thread(load.join)
                await asyncio.to_thread(bare.join)
                baseline_per_s = received.value / baseline_seconds

                # Phase 2: the pipeline, gateway and consumer in their own processes.
                for role in ("consumer", "gateway"):
                    process = context.Process(
                        target=_role, args=(role, {**env, "MORNET_LOG_JSON": "1"}), name=role
                    )
                    process.start()
                    children.append(process)
                await asyncio.sleep(4)
                sent = context.Value("q", 0)
                load_rss = context.Value("q", 0)
                load = context.Process(
                    target=_load,
                    args=(port, agents, rate, duration, batch, devices, "run", sent, load_rss),
                )
                started = time.time()
                load.start()
                await asyncio.to_thread(load.join)
                expected = sent.value * batch
                deadline = time.monotonic() + 120
                while True:
                    measured = await _measure(bench_url)
                    if measured["stored"] >= expected or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(1)
                rss = {p.name: peak_rss_mb(p.pid or 0) for p in children}
                rss["load"] = round(load_rss.value / 1024, 1)
            finally:
                for process in children:
                    if process.pid:
                        os.kill(process.pid, signal.SIGTERM)
                    process.join(20)
                await _delete_queue(amqp_url, queue)
    stored = measured["stored"]
    window = max(measured["stored_at"], default=started) - started
    messages = sent.value
    return {
        "benchmark": "ingest",
        "measured": "signed batches from simulated agents → Mosquitto → gateway process → RabbitMQ "
        "→ consumer process → PostgreSQL; readings/s and messages/s over the run",
        "duration_s": duration,
        "households": households,
        "readings_per_message": batch,
        "sent_readings": expected,
        "stored_readings": stored,
        "readings_per_s": round(stored / window, 1) if window > 0 else 0,
        "messages_per_s": round(messages / window, 1) if window > 0 else 0,
        "offered_messages_per_s": rate,
        "lost": max(expected - stored, 0),
        "duplicated": max(stored - expected, 0),
        "p50_latency_s": round(percentile(measured["latencies"], 0.50), 3),
        "p99_latency_s": round(percentile(measured["latencies"], 0.99), 3),
        "baseline_messages_per_s": round(baseline_per_s, 1),
        "ratio": round((messages / window) / baseline_per_s, 3)
        if window > 0 and baseline_per_s
        else 0,
        "peak_rss_mb": rss,
    }

"""`mornet bench ingest`: agents' traffic through the real pipeline, measured end to end.

Production engines: Mosquitto → gateway process → RabbitMQ → consumer process → PostgreSQL.
Embedded (`--embedded`, what `mornet up` runs): one process holding the amqtt broker, the
gateway, the in-process bus and the consumer, on SQLite.

Each step offers a fixed rate of readings for `duration` seconds; the pipeline keeps running
from step to step (the table grows as it would). A step passes when every reading was stored
once and the p99 from a reading's creation to its commit is at most `P99_BOUND_S`. A sweep
raises the rate until a step fails."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from mornet.bench.harness import (
    cpu_between,
    cpu_by_process,
    free_port,
    peak_rss_mb,
    percentile,
    pids_named,
    scratch_directory,
    scratch_mosquitto,
    scratch_postgres,
    scratch_sqlite,
)
from mornet.wire.telemetry import private_key, telemetry_topic, with_signature

P99_BOUND_S = 2.0
DRAIN_TIMEOUT_S = 120.0
SWEEP_READINGS_PER_S = (5000.0, 10000.0, 15000.0, 20000.0, 25000.0, 30000.0)
EMBEDDED_SWEEP_READINGS_PER_S = (1000.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0)

# --- the load: agents publishing signed batches at a fixed rate -------------------------


def _connect(port: int, client_id: str, login: tuple[str, str] | None) -> paho.Client:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if login is not None:
        client.username_pw_set(*login)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    # The clock starts once the broker accepted the login (an agent's secret is checked
    # with argon2), not while messages queue in the client.
    if not connected.wait(60):
        raise RuntimeError(f"{client_id} could not connect to the broker")
    return client


def _load(
    port: int,
    agents: list[dict[str, str]],
    rate: float,
    duration: float,
    batch: int,
    devices: int,
    prefix: str,
    counter: Any,
    usage: Any = None,
    as_agents: bool = False,
) -> None:
    """One process publishing `rate` messages/s of `batch` readings, spread over the agents.
    `as_agents`: each agent logs in as itself (the embedded broker checks it); else one
    client publishes for all (Mosquitto in the benchmark lets anyone in)."""
    if as_agents:
        from mornet.telemetry.broker import agent_client_id

        clients = [
            _connect(
                port,
                agent_client_id(agent["agent_id"]),
                (agent["agent_id"], agent["secret"]),
            )
            for agent in agents
        ]
    else:
        shared = _connect(port, f"bench-load-{prefix}", None)
        clients = [shared] * len(agents)
    seqs = [0] * len(agents)
    keys = [private_key(agent["secret"]) for agent in agents]
    if usage is not None:
        usage[2] = time.time()
    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < duration:
        due = int(elapsed * rate) + 1
        while sent < due:
            index = sent % len(agents)
            agent = agents[index]
            now = datetime.now(UTC).isoformat()
            first = seqs[index]
            seqs[index] += batch
            clients[index].publish(
                telemetry_topic(agent["household_id"]),
                _signed(agent["agent_id"], keys[index], prefix, now, first, batch, devices),
                qos=1,
            )
            sent += 1
        time.sleep(0.001)
    for client in set(clients):
        while client.want_write():
            time.sleep(0.01)
    time.sleep(0.5)
    for client in set(clients):
        client.disconnect()
        client.loop_stop()
    with counter.get_lock():
        counter.value += sent
    if usage is not None:
        own = resource.getrusage(resource.RUSAGE_SELF)
        usage[0] = own.ru_utime + own.ru_stime
        usage[1] = own.ru_maxrss / 1024


_READING = (
    '{{"current_a":0.43,"device_id":"{prefix}-d{device}","energy_wh":{seq}.0,'
    '"power_w":100.0,"resource":"E","seq":{seq},"ts":"{ts}","voltage_v":230.0}}'
)


def _signed(
    agent_id: str,
    key: Any,
    prefix: str,
    ts: str,
    first: int,
    batch: int,
    devices: int,
) -> bytes:
    """A signed message of `batch` plug readings from `first` on, written straight as the
    canonical JSON the agent signs (`wire.telemetry.canonical`: keys sorted, no spaces):
    the load generator shares the cores with what it measures, so it spends little."""
    readings = ",".join(
        _READING.format(prefix=prefix, device=seq % devices, seq=seq, ts=ts)
        for seq in range(first, first + batch)
    )
    return with_signature(f'{{"agent_id":"{agent_id}","readings":[{readings}]}}'.encode(), key)


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


def _role(role: str, env: dict[str, str], stored: Any, ready: Any) -> None:
    """`gateway`, `consumer`, or `embedded` (both, with the embedded broker and bus). Keeps
    `stored` at the number of readings the consumer committed, so the benchmark can wait for
    them without querying the table it measures."""
    for name in ("MORNET_AMQP_URL", "MORNET_MQTT_URL", "MORNET_DATABASE_URL"):
        os.environ.pop(name, None)
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
            gateway=role.startswith(("gateway", "embedded")),
            consumer=role.startswith(("consumer", "embedded")),
        )
        if telemetry.subscriber is not None:
            # A broker drops what is published before any gateway subscribed.
            await telemetry.subscriber.connected.wait()
        with ready.get_lock():
            ready.value += 1
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        counted = 0
        while not stop.is_set():
            # Processes add what they stored since they last counted.
            with stored.get_lock():
                stored.value += telemetry.consumer.stored - counted
            counted = telemetry.consumer.stored
            await asyncio.sleep(0.2)
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


async def _stored_of_step(database_url: str, prefix: str) -> tuple[int, list[float], float]:
    """(readings stored, their latencies in seconds, when the last one was stored) of a step."""
    from mornet.db import create_engine, create_sessionmaker
    from mornet.telemetry import service as telemetry

    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await telemetry.arrivals_of_devices(session, f"{prefix}-")
    finally:
        await engine.dispose()
    latencies = [(received - ts).total_seconds() for ts, received in rows]
    last = max((received.timestamp() for _, received in rows), default=0.0)
    return len(rows), latencies, last


# --- CPU accounting -----------------------------------------------------------------------


@dataclass
class _Engines:
    """The processes whose CPU a step is charged with (their pids looked up each time:
    PostgreSQL starts and ends backends, so a step compares each process's own readings)."""

    roles: dict[str, int]
    mosquitto: int | None
    production: bool

    def snapshot(self) -> dict[str, dict[int, float]]:
        cpu = {name: cpu_by_process([pid]) for name, pid in self.roles.items()}
        if self.production:
            cpu["broker"] = cpu_by_process([self.mosquitto] if self.mosquitto else [])
            cpu["rabbitmq"] = cpu_by_process(pids_named("beam.smp"))
            cpu["postgresql"] = cpu_by_process(pids_named("postgres"))
        return cpu


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    duration: float
    households: int
    batch: int
    devices: int
    embedded: bool


async def _step(
    index: int,
    readings_per_s: float,
    setup: Setup,
    *,
    port: int,
    agents: list[dict[str, str]],
    database_url: str,
    stored: Any,
    engines: _Engines,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    prefix = f"step{index}"
    messages_per_s = readings_per_s / setup.batch
    sent = context.Value("q", 0)
    usage = context.Array("d", 3)  # CPU seconds, peak RSS (MB), when the load began
    before_stored = stored.value
    before_cpu = engines.snapshot()
    started = time.time()
    load = context.Process(
        target=_load,
        args=(
            port,
            agents,
            messages_per_s,
            setup.duration,
            setup.batch,
            setup.devices,
            prefix,
            sent,
            usage,
            setup.embedded,
        ),
        name="load",
    )
    load.start()
    await asyncio.to_thread(load.join)
    expected = sent.value * setup.batch
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while stored.value - before_stored < expected and time.monotonic() < deadline:  # noqa: ASYNC110 - another process's counter
        await asyncio.sleep(0.5)
    after_cpu = engines.snapshot()
    count, latencies, last_stored = await _stored_of_step(database_url, prefix)
    window = max(last_stored - (usage[2] or started), setup.duration)
    thousands = max(count, 1) / 1000
    cpu = {name: cpu_between(before_cpu[name], after_cpu[name]) for name in before_cpu}
    cpu["load"] = usage[0]
    p99 = percentile(latencies, 0.99)
    lost, duplicated = max(expected - count, 0), max(count - expected, 0)
    return {
        "offered_readings_per_s": readings_per_s,
        "sent_readings": expected,
        "stored_readings": count,
        "readings_per_s": round(count / window, 1),
        "lost": lost,
        "duplicated": duplicated,
        "p50_latency_s": round(percentile(latencies, 0.50), 3),
        "p99_latency_s": round(p99, 3),
        "passed": lost == 0 and duplicated == 0 and count > 0 and p99 <= P99_BOUND_S,
        "cpu_s_per_1000_readings": {k: round(v / thousands, 4) for k, v in cpu.items()},
        "cpu_s": {k: round(v, 1) for k, v in cpu.items()},
        "load_peak_rss_mb": round(usage[1], 1),
    }


async def run_ingest_benchmark(
    *,
    duration: float,
    households: int,
    readings_per_s: Sequence[float],
    batch: int,
    devices: int,
    postgres_url: str,
    amqp_url: str,
    mosquitto: str | None,
    embedded: bool = False,
    processes: int = 1,
    baseline: bool = True,
) -> dict[str, Any]:
    """Run the steps in order, stopping after the first that fails; one result."""
    setup = Setup(duration, households, batch, devices, embedded)
    context = multiprocessing.get_context("spawn")
    children: list[Any] = []
    steps: list[dict[str, Any]] = []
    baseline_per_s: float | None = None
    queue = f"bench.readings.{os.getpid()}"
    with scratch_directory() as scratch:
        async with _engines(scratch, postgres_url, mosquitto, embedded) as (database_url, port):
            try:
                agents = await _provision(database_url, households)
                if embedded:
                    env = {
                        "MORNET_DATABASE_URL": database_url,
                        "MORNET_DATA_DIR": str(scratch),
                        "MORNET_MQTT_PORT": str(port),
                    }
                    roles = ["embedded"]
                else:
                    env = {
                        "MORNET_DATABASE_URL": database_url,
                        "MORNET_AMQP_URL": amqp_url,
                        "MORNET_MQTT_URL": f"mqtt://127.0.0.1:{port}",
                        "MORNET_DATA_DIR": str(scratch),
                        "MORNET_READINGS_QUEUE": queue,
                    }
                    roles = [f"consumer{n}" for n in range(1, processes + 1)]
                    roles += [f"gateway{n}" for n in range(1, processes + 1)]
                    if baseline:
                        baseline_per_s = await _bare_baseline(
                            port, agents, readings_per_s[-1] / batch, setup
                        )
                stored = context.Value("q", 0)
                ready = context.Value("q", 0)
                for role in roles:
                    own = {"MORNET_MQTT_CLIENT_ID": f"bench-{role}-{os.getpid()}"}
                    process = context.Process(
                        target=_role,
                        args=(role, {**env, **own, "MORNET_LOG_JSON": "1"}, stored, ready),
                        name=role,
                    )
                    process.start()
                    children.append(process)
                deadline = time.monotonic() + 120
                while ready.value < len(roles):
                    if time.monotonic() > deadline or not all(p.is_alive() for p in children):
                        raise RuntimeError("the pipeline's processes did not start")
                    await asyncio.sleep(0.2)
                engines = _Engines(
                    {p.name: p.pid for p in children},
                    _pids_of_broker(port) if not embedded else None,
                    production=not embedded,
                )
                for index, rate in enumerate(readings_per_s):
                    step = await _step(
                        index,
                        rate,
                        setup,
                        port=port,
                        agents=agents,
                        database_url=database_url,
                        stored=stored,
                        engines=engines,
                    )
                    steps.append(step)
                    if not step["passed"]:
                        break
                rss = {p.name: peak_rss_mb(p.pid or 0) for p in children}
            finally:
                for process in children:
                    if process.pid:
                        os.kill(process.pid, signal.SIGTERM)
                    process.join(20)
                if not embedded:
                    await _delete_queue(amqp_url, queue)
    passed = [s["offered_readings_per_s"] for s in steps if s["passed"]]
    return {
        "benchmark": "ingest",
        "engines": "embedded" if embedded else "production",
        "measured": (
            "signed batches from simulated agents → amqtt broker, gateway, in-process bus and "
            "consumer in one process → SQLite"
            if embedded
            else "signed batches from simulated agents → Mosquitto → gateway process → RabbitMQ "
            "→ consumer process → PostgreSQL"
        )
        + f"; each step {duration:g} s at a fixed offered rate; passes with 0 lost, "
        f"0 duplicated, p99 creation → commit ≤ {P99_BOUND_S:g} s",
        "duration_s": duration,
        "households": households,
        "readings_per_message": batch,
        "processes": "1 (broker, gateway, bus and consumer)"
        if embedded
        else f"{processes} gateway(s) sharing the subscription, {processes} consumer(s)",
        "highest_passing_readings_per_s": max(passed, default=0),
        "steps": steps,
        "baseline_messages_per_s": baseline_per_s,
        "peak_rss_mb": rss,
    }


def _pids_of_broker(port: int) -> int | None:
    """The scratch Mosquitto's pid (found by the config file naming its port)."""
    for pid in pids_named("mosquitto"):
        try:
            config = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2]
            if f"listener {port} ".encode() in Path(config.decode()).read_bytes():
                return pid
        except (OSError, IndexError):
            continue
    return None


@asynccontextmanager
async def _engines(
    scratch: Path, postgres_url: str, mosquitto: str | None, embedded: bool
) -> AsyncIterator[tuple[str, int]]:
    """The scratch database and the broker's port: for production a scratch Mosquitto, for
    embedded a free port for the in-process broker."""
    if embedded:
        async with scratch_sqlite(scratch) as url:
            yield url, free_port()
        return
    async with (
        scratch_mosquitto(scratch, mosquitto) as port,
        scratch_postgres(postgres_url, f"mornet_bench_{os.getpid()}") as url,
    ):
        yield url, port


async def _bare_baseline(
    port: int, agents: list[dict[str, str]], messages_per_s: float, setup: Setup
) -> float:
    """Messages/s a bare subscriber receives from Mosquitto under the highest load offered:
    the broker's own ceiling on this machine, for comparison."""
    context = multiprocessing.get_context("spawn")
    sent = context.Value("q", 0)
    received = context.Value("q", 0)
    seconds = min(setup.duration, 10)
    bare = context.Process(target=_bare_subscriber, args=(port, seconds + 2, received))
    bare.start()
    await asyncio.sleep(1)
    load = context.Process(
        target=_load,
        args=(port, agents, messages_per_s, seconds, setup.batch, setup.devices, "base", sent),
    )
    load.start()
    await asyncio.to_thread(load.join)
    await asyncio.to_thread(bare.join)
    return round(float(received.value) / seconds, 1)

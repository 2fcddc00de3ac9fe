"""The pipeline against a real Mosquitto: agent → broker → gateway → bus → storage, with the
broker and the gateway stopped at the worst moments."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.agent.config import AgentConfig
from mornet.agent.publisher import SendFailed, send_readings
from mornet.agent.runner import Agent
from mornet.bus import READINGS, InProcessBus
from mornet.runtime import Runtime
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from mornet.telemetry.models import Reading
from mornet.telemetry.mqtt import Subscriber
from mornet.wire.broker import BrokerAddress
from tests.brokers import Mosquitto, free_port
from tests.factories import user_with_token
from tests.polling import eventually
from tests.telemetry.helpers import FakeAgent, plug, provision


class Platform:
    """Gateway + in-process bus + consumer, subscribed to the test's Mosquitto."""

    def __init__(
        self, runtime: Runtime, broker: Mosquitto, client_id: str = "gateway-test"
    ) -> None:
        self.bus = InProcessBus()
        self.gateway = Gateway(runtime.sessions, self.bus)
        self.consumer = ReadingsConsumer(runtime.sessions)
        self.broker = broker
        self.client_id = client_id
        self.subscriber: Subscriber | None = None

    async def start(self) -> None:
        await self.bus.consume(READINGS, "readings", self.consumer.handle)
        await self.connect()

    async def connect(self) -> None:
        self.subscriber = Subscriber(
            BrokerAddress.parse(self.broker.url),
            topic="mornet/+/telemetry",
            client_id=self.client_id,
            handler=self.gateway.handle,
        )
        await self.subscriber.start()
        await asyncio.wait_for(self.subscriber.connected.wait(), 10)

    async def stop(self) -> None:
        if self.subscriber is not None:
            await self.subscriber.stop()
        await self.bus.close()


@pytest.fixture
async def platform(runtime: Runtime, mosquitto: Mosquitto) -> AsyncIterator[Platform]:
    running = Platform(runtime, mosquitto)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def registered(client: httpx.AsyncClient, session: AsyncSession) -> FakeAgent:
    _, headers = await user_with_token(client, session)
    return await provision(client, headers)


def agent_config(agent: FakeAgent, broker: Mosquitto, tmp_path: Path, **extra: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "household_id": agent.household_id,
            "agent_id": agent.agent_id,
            "agent_secret": agent.secret,
            "mqtt_url": broker.url,
            "interval_s": 0.05,
            "buffer_path": str(tmp_path / "agent-buffer.db"),
            "replay_batch": 50,
            "replay_messages_per_s": 200,
            "devices": [
                {"id": "sim-1", "kind": "simulated", "seed": 1},
                {"id": "sim-2", "kind": "simulated", "seed": 2},
            ],
            **extra,
        }
    )


async def stored(session: AsyncSession, household_id: str) -> list[tuple[str, int]]:
    session.expire_all()
    rows = await session.execute(
        select(Reading.device_id, Reading.seq)
        .where(Reading.household_id == uuid.UUID(household_id))
        .order_by(Reading.device_id, Reading.seq)
    )
    return [(d, s) for d, s in rows.all()]


async def test_agent_readings_flow_to_storage(
    platform: Platform,
    registered: FakeAgent,
    session: AsyncSession,
    mosquitto: Mosquitto,
    tmp_path: Path,
) -> None:
    agent = Agent(agent_config(registered, mosquitto, tmp_path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await eventually(lambda: _at_least(session, registered.household_id, 10))
    stop.set()
    await task
    rows = await stored(session, registered.household_id)
    for device in ("sim-1", "sim-2"):
        seqs = [s for d, s in rows if d == device]
        assert seqs == list(range(len(seqs)))  # every reading, once, in sequence
    assert platform.gateway.rejected == 0


async def _at_least(session: AsyncSession, household_id: str, n: int) -> bool:
    return len(await stored(session, household_id)) >= n


async def test_broker_outage_is_buffered_and_every_reading_arrives_once(
    platform: Platform,
    registered: FakeAgent,
    session: AsyncSession,
    mosquitto: Mosquitto,
    tmp_path: Path,
) -> None:
    agent = Agent(agent_config(registered, mosquitto, tmp_path))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await eventually(lambda: _at_least(session, registered.household_id, 4))

    mosquitto.stop()
    await eventually(lambda: _async(not agent.publisher.connected))
    await eventually(lambda: _async(agent.buffer.pending() >= 40))  # offline: piling up
    mosquitto.start()
    await eventually(lambda: _async(agent.buffer.pending() == 0), within=40)
    stop.set()
    await task

    expected = {(d, s) for d in ("sim-1", "sim-2") for s in range(_last_seq(tmp_path, d) + 1)}
    await eventually(lambda: _stored_equals(session, registered.household_id, expected), within=30)
    rows = await stored(session, registered.household_id)
    assert len(rows) == len(set(rows)) == len(expected)


def _last_seq(tmp_path: Path, device: str) -> int:
    import sqlite3

    with sqlite3.connect(tmp_path / "agent-buffer.db") as db:
        return int(
            db.execute("SELECT last_seq FROM sequences WHERE device_id = ?", (device,)).fetchone()[
                0
            ]
        )


async def _stored_equals(
    session: AsyncSession, household_id: str, expected: set[tuple[str, int]]
) -> bool:
    return set(await stored(session, household_id)) == expected


async def _async(value: bool) -> bool:
    return value


async def test_the_gateway_is_connected_only_once_its_subscription_is_granted(
    mosquitto: Mosquitto,
) -> None:
    """A new gateway's first session has no subscription until the broker grants it: a
    message an agent sends before then is dropped by the broker. So `connected` (what start-up
    and these tests wait for) means subscribed; it used to be set when CONNECT was answered,
    and a message sent right after it was lost now and then (the first of a stream)."""
    for attempt in range(20):
        subscriber = Subscriber(
            BrokerAddress.parse(mosquitto.url),
            topic="mornet/+/telemetry",
            client_id=f"gateway-subscribed-{attempt}-{uuid.uuid4().hex[:8]}",
            handler=lambda _topic, _payload: asyncio.sleep(0),
        )
        try:
            await subscriber.start()
            await asyncio.wait_for(subscriber.connected.wait(), 10)
            assert subscriber.subscriptions >= 1
        finally:
            await subscriber.stop()


async def test_a_gateway_killed_mid_stream_loses_and_doubles_nothing(
    runtime: Runtime, registered: FakeAgent, session: AsyncSession, mosquitto: Mosquitto
) -> None:
    first = Platform(runtime, mosquitto, client_id="gateway-crash")
    await first.start()
    publisher = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="load")
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    total = 300
    for seq in range(total):
        info = publisher.publish(
            registered.topic, registered.message([plug(seq, 1000.0 + seq)]), qos=1
        )
        info.wait_for_publish(5)
        if seq == 100:
            await first.stop()  # the gateway dies with messages in flight, unacknowledged
    publisher.disconnect()
    publisher.loop_stop()

    second = Platform(runtime, mosquitto, client_id="gateway-crash")  # same persistent session
    await second.start()
    try:
        expected = {("plug-1", s) for s in range(total)}
        await eventually(
            lambda: _stored_equals(session, registered.household_id, expected), within=30
        )
    finally:
        await second.stop()
    assert len(await stored(session, registered.household_id)) == total


async def _mornet(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mornet",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return int(process.returncode or 0), output.decode()


async def test_agent_send_publishes_a_file_of_readings_as_the_agent(
    platform: Platform, registered: FakeAgent, session: AsyncSession, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'household_id = "{registered.household_id}"\n'
        f'agent_id = "{registered.agent_id}"\n'
        f'agent_secret = "{registered.secret}"\n'
        f'mqtt_url = "{platform.broker.url}"\n'
    )
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps({"readings": [plug(1, 10.0), plug(2, 12.5)]}))
    code, output = await _mornet("agent", "send", "--config", str(config), "--file", str(readings))
    assert code == 0, output
    assert "PUBACK" in output
    assert "2 readings" in output

    async def both_stored() -> bool:
        return await stored(session, registered.household_id) == [("plug-1", 1), ("plug-1", 2)]

    await eventually(both_stored, within=20)

    readings.write_text("[1, 2]")
    code, output = await _mornet("agent", "send", "--config", str(config), "--file", str(readings))
    assert code == 2
    assert "expected a list of reading objects" in output


async def test_agent_send_reports_a_broker_that_does_not_answer(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'household_id = "{uuid.uuid4()}"\nagent_id = "{uuid.uuid4()}"\n'
        f'agent_secret = "{"s" * 32}"\nmqtt_url = "mqtt://127.0.0.1:{free_port()}"\n'
    )
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps([plug(1, 10.0)]))
    code, output = await _mornet("agent", "send", "--config", str(config), "--file", str(readings))
    assert code == 2
    assert "no answer from the broker" in output


async def test_agent_and_gateway_reach_a_tls_broker_through_a_private_ca(
    runtime: Runtime, registered: FakeAgent, session: AsyncSession, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "tls-broker", tls=True)
    broker.start()
    bus = InProcessBus()
    gateway = Gateway(runtime.sessions, bus)
    consumer = ReadingsConsumer(runtime.sessions)
    await bus.consume(READINGS, "readings", consumer.handle)
    subscriber = Subscriber(
        BrokerAddress.parse(broker.url),
        topic="mornet/+/telemetry",
        client_id="gateway-tls",
        handler=gateway.handle,
        ca_file=broker.ca_file,
    )
    try:
        await subscriber.start()
        await asyncio.wait_for(subscriber.connected.wait(), 10)
        trusted = agent_config(registered, broker, tmp_path, mqtt_ca_file=str(broker.ca_file))
        answer = await asyncio.to_thread(send_readings, trusted, [plug(1, 10.0)])
        assert answer.startswith("PUBACK")

        async def stored_over_tls() -> bool:
            return await stored(session, registered.household_id) == [("plug-1", 1)]

        await eventually(stored_over_tls, within=20)

        # The system's CAs do not know this broker's certificate: nothing is sent.
        untrusted = agent_config(registered, broker, tmp_path)
        with pytest.raises(SendFailed, match="no answer"):
            await asyncio.to_thread(send_readings, untrusted, [plug(2, 11.0)], timeout=3)
    finally:
        await subscriber.stop()
        await bus.close()
        broker.stop()
    assert await stored(session, registered.household_id) == [("plug-1", 1)]

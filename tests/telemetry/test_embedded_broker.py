"""The embedded broker of `mornet up`: agents log in with their credentials and publish only
for their own household; the gateway subscribes with its internal password."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.runtime import Runtime
from mornet.telemetry.broker import GATEWAY_USER, EmbeddedBroker
from tests.brokers import free_port
from tests.factories import user_with_token
from tests.polling import eventually
from tests.telemetry.helpers import plug, provision
from tests.telemetry.test_mqtt import stored

HOUSEHOLD = uuid.uuid4()
AGENT = uuid.uuid4()
SECRET = "agent-secret-value"


async def verify(agent_id: uuid.UUID, secret: str) -> uuid.UUID | None:
    return HOUSEHOLD if agent_id == AGENT and secret == SECRET else None


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    running = EmbeddedBroker(host="127.0.0.1", port=free_port(), verify_agent=verify)
    await running.start()
    yield running
    await running.stop()


async def connect(
    broker: EmbeddedBroker, username: str, password: str, client_id: str
) -> tuple[paho.Client, list[str], list[Any]]:
    received: list[str] = []
    outcome: list[Any] = []
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(username, password)
    client.on_message = lambda _c, _u, message: received.append(message.topic)
    client.on_connect = lambda _c, _u, _f, reason, _p: outcome.append(reason)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for _ in range(50):
        if outcome:
            break
        await asyncio.sleep(0.05)
    return client, received, outcome


async def test_agents_publish_only_for_their_household(broker: EmbeddedBroker) -> None:
    gateway, received, outcome = await connect(
        broker, GATEWAY_USER, broker.principals.gateway_password, "gw"
    )
    assert not outcome[0].is_failure
    gateway.subscribe("mornet/+/telemetry", qos=1)
    await asyncio.sleep(0.3)
    agent, _, agent_outcome = await connect(broker, str(AGENT), SECRET, f"mornet-agent-{AGENT}")
    assert not agent_outcome[0].is_failure
    agent.publish(f"mornet/{HOUSEHOLD}/telemetry", b"mine", qos=1).wait_for_publish(5)
    agent.publish(f"mornet/{uuid.uuid4()}/telemetry", b"theirs", qos=1).wait_for_publish(5)
    await asyncio.sleep(0.5)
    assert received == [f"mornet/{HOUSEHOLD}/telemetry"]
    for client in (gateway, agent):
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (str(AGENT), "wrong"),
        (str(uuid.uuid4()), SECRET),
        ("anonymous", ""),
        (GATEWAY_USER, "guess"),
    ],
)
async def test_wrong_credentials_are_refused(
    broker: EmbeddedBroker, username: str, password: str
) -> None:
    client, _, outcome = await connect(broker, username, password, f"c-{uuid.uuid4().hex[:6]}")
    client.loop_stop()
    assert outcome
    assert outcome[0].is_failure


async def _subscribed_gateway(broker: EmbeddedBroker) -> tuple[paho.Client, list[str]]:
    gateway, received, outcome = await connect(
        broker, GATEWAY_USER, broker.principals.gateway_password, "mornet-gateway-1"
    )
    assert not outcome[0].is_failure
    gateway.subscribe("mornet/+/telemetry", qos=1)
    await asyncio.sleep(0.3)
    return gateway, received


@pytest.mark.parametrize(
    ("username", "password", "clean"),
    [
        ("anonymous", "", True),
        ("anonymous", "", False),
        (GATEWAY_USER, "guess", True),
        (str(AGENT), SECRET, True),  # a real agent, but not under its own client id
        (str(AGENT), SECRET, False),
    ],
)
async def test_no_client_can_take_over_the_gateways_session(
    broker: EmbeddedBroker, username: str, password: str, clean: bool
) -> None:
    gateway, received = await _subscribed_gateway(broker)
    rogue = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="mornet-gateway-1",
        clean_session=clean,
    )
    rogue.username_pw_set(username, password)
    refused: list[Any] = []
    rogue.on_connect = lambda _c, _u, _f, reason, _p: refused.append(reason)
    rogue.connect("127.0.0.1", broker.port)
    rogue.loop_start()
    for _ in range(50):
        if refused:
            break
        await asyncio.sleep(0.05)
    rogue.loop_stop()
    assert refused
    assert refused[0].is_failure
    # The gateway is still connected and subscribed: an agent's message reaches it.
    agent, _, outcome = await connect(broker, str(AGENT), SECRET, f"mornet-agent-{AGENT}")
    assert not outcome[0].is_failure
    agent.publish(f"mornet/{HOUSEHOLD}/telemetry", b"after", qos=1).wait_for_publish(5)
    for _ in range(40):
        if received:
            break
        await asyncio.sleep(0.05)
    assert received == [f"mornet/{HOUSEHOLD}/telemetry"]
    assert gateway.is_connected()
    for client in (gateway, agent):
        client.disconnect()
        client.loop_stop()


async def test_an_agent_cannot_use_another_agents_client_id(broker: EmbeddedBroker) -> None:
    client, _, outcome = await connect(broker, str(AGENT), SECRET, f"mornet-agent-{uuid.uuid4()}")
    client.loop_stop()
    assert outcome[0].is_failure


async def test_agent_send_prints_the_brokers_refusal(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'household_id = "{HOUSEHOLD}"\nagent_id = "{AGENT}"\n'
        f'agent_secret = "{"wrong" * 8}"\nmqtt_url = "mqtt://127.0.0.1:{broker.port}"\n'
    )
    readings = tmp_path / "readings.json"
    readings.write_text('[{"device_id": "m", "resource": "W", "ts": "2026-11-01T00:00:00Z"}]')
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mornet",
        "agent",
        "send",
        "--config",
        str(config),
        "--file",
        str(readings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "refused the connection" in output.decode()


async def test_every_reading_after_a_rogue_takeover_attempt_is_stored(
    runtime: Runtime, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The whole embedded pipeline: a client with the gateway's id (no credentials, clean
    session) changes nothing; every reading sent afterwards is stored."""
    runtime.settings.mqtt_port = free_port()
    telemetry = await runtime.start_telemetry()
    assert telemetry.subscriber is not None
    await asyncio.wait_for(telemetry.subscriber.connected.wait(), 10)
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)

    rogue = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=runtime.settings.mqtt_client_id,
        clean_session=True,
    )
    rogue.connect("127.0.0.1", runtime.settings.mqtt_port)
    rogue.loop_start()
    await asyncio.sleep(1)
    rogue.loop_stop()

    publisher = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"mornet-agent-{agent.agent_id}",
    )
    publisher.username_pw_set(agent.agent_id, agent.secret)
    publisher.connect("127.0.0.1", runtime.settings.mqtt_port)
    publisher.loop_start()
    try:
        for seq in range(20):
            info = publisher.publish(agent.topic, agent.message([plug(seq, 100.0 + seq)]), qos=1)
            await asyncio.to_thread(info.wait_for_publish, 5)

        async def all_stored() -> bool:
            return len(await stored(session, agent.household_id)) == 20

        await eventually(all_stored, within=20)
    finally:
        publisher.disconnect()
        publisher.loop_stop()

"""The gateway puts the batches of messages accepted together in one bus message, and a
message counts as handled (may be acknowledged to the broker) only once its bundle is on the
bus."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bus import Handler
from mornet.runtime import Runtime
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from mornet.telemetry.models import Reading
from mornet.telemetry.schemas import UnitBundle
from tests.factories import user_with_token
from tests.telemetry.helpers import plug, provision


class RecordingBus:
    """A bus that keeps what is published, or fails every publish while `down`."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.down = False

    async def publish(self, topic: str, body: bytes) -> None:
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("the broker is unreachable")
        self.bodies.append(body)

    async def consume(self, topic: str, queue: str, handler: Handler, **_: object) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


async def test_messages_accepted_together_share_one_bus_message(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    _, headers = await user_with_token(client, session)
    agents = [await provision(client, headers) for _ in range(3)]
    bus = RecordingBus()
    gateway = Gateway(runtime.sessions, bus, agent_cache_seconds=60)
    messages = [
        (agent.topic, agent.message([plug(seq, 100.0 * seq, device=f"plug-{seq % 2}")]))
        for agent in agents
        for seq in range(4)
    ]
    handled = await asyncio.gather(*(gateway.handle(t, p) for t, p in messages))
    assert handled == [True] * len(messages)
    # Fewer bus messages than MQTT messages, and every batch in exactly one of them.
    assert 1 <= len(bus.bodies) < len(messages)
    bundles = [UnitBundle.model_validate_json(body) for body in bus.bodies]
    assert sum(len(b.batches) for b in bundles) == len(messages)

    consumer = ReadingsConsumer(runtime.sessions)
    await consumer.handle(bus.bodies)
    assert await session.scalar(select(func.count()).select_from(Reading)) == len(messages)


async def test_a_bundle_that_cannot_reach_the_bus_fails_each_of_its_messages(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    bus = RecordingBus()
    bus.down = True
    gateway = Gateway(runtime.sessions, bus, agent_cache_seconds=60)
    messages = [(agent.topic, agent.message([plug(seq, 100.0 * seq)])) for seq in range(5)]
    results = await asyncio.gather(
        *(gateway.handle(t, p) for t, p in messages), return_exceptions=True
    )
    # Each handler raises, so none of the MQTT messages is acknowledged: the broker
    # delivers them again once the bus is back.
    assert all(isinstance(r, ConnectionError) for r in results)
    assert gateway.accepted == 0

    bus.down = False
    assert await gateway.handle(*messages[0]) is True
    assert len(bus.bodies) == 1


@pytest.mark.parametrize("size", [1, 3])
async def test_a_bundle_holds_at_most_its_size(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, size: int
) -> None:
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    bus = RecordingBus()
    gateway = Gateway(runtime.sessions, bus, agent_cache_seconds=60, bundle_size=size)
    messages = [(agent.topic, agent.message([plug(seq, 100.0 * seq)])) for seq in range(7)]
    await asyncio.gather(*(gateway.handle(t, p) for t, p in messages))
    sizes = [len(UnitBundle.model_validate_json(b).batches) for b in bus.bodies]
    assert sum(sizes) == 7
    assert max(sizes) <= size

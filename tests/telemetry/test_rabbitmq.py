"""The bus on the real RabbitMQ: durable, confirmed, and redelivered to a restarted consumer."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bus import READINGS, RabbitBus
from mornet.runtime import Runtime
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from tests.brokers import AMQP_URL
from tests.factories import user_with_token
from tests.polling import eventually
from tests.telemetry.helpers import plug, provision
from tests.telemetry.test_mqtt import stored


async def test_gateway_to_rabbitmq_to_storage_survives_a_consumer_crash(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime, rabbit_queue: str
) -> None:
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    producer = RabbitBus(AMQP_URL)
    gateway = Gateway(runtime.sessions, producer)

    # The queue exists before anything is published: a durable queue keeps what it gets.
    crashing = RabbitBus(AMQP_URL, prefetch=10)
    consumer = ReadingsConsumer(runtime.sessions)
    handled = asyncio.Event()

    async def slow_then_die(bodies: list[bytes]) -> None:
        await consumer.handle(bodies)
        if consumer.stored >= 40:
            handled.set()
            await asyncio.sleep(3600)  # stuck: never acknowledges again

    await crashing.consume(READINGS, rabbit_queue, slow_then_die)
    total = 150
    for seq in range(total):
        assert await gateway.handle(agent.topic, agent.message([plug(seq, 1000.0 + seq)]))
    await asyncio.wait_for(handled.wait(), 30)
    await crashing.close()  # the consumer process dies with unacknowledged messages

    survivor = RabbitBus(AMQP_URL)
    second = ReadingsConsumer(runtime.sessions)
    await survivor.consume(READINGS, rabbit_queue, second.handle)
    try:
        expected = {("plug-1", s) for s in range(total)}

        async def all_stored() -> bool:
            return set(await stored(session, agent.household_id)) == expected

        await eventually(all_stored, within=30)
    finally:
        await survivor.close()
        await producer.close()
    assert len(await stored(session, agent.household_id)) == total
    assert second.duplicates >= 1  # redelivered messages were recognised, not stored again

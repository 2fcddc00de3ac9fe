"""Poison messages: a message that can never be stored goes to the dead letters with the reason,
and every valid reading sent after it is stored within seconds — on both buses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import aio_pika
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bus import READINGS, Bus, InProcessBus, RabbitBus, Unprocessable, isolate
from mornet.runtime import Runtime
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from mornet.telemetry.models import DeadLetter, Reading
from mornet.telemetry.schemas import NormalisedBatch, NormalisedReading
from tests.brokers import AMQP_URL
from tests.factories import user_with_token
from tests.polling import eventually
from tests.telemetry.helpers import T0, FakeAgent, plug, provision


@pytest.fixture(params=["in-process", "rabbitmq"])
async def events(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, str]]:
    queue = f"test-poison-{uuid.uuid4().hex[:10]}"
    if request.param == "in-process":
        yield InProcessBus(attempts=3), queue
        return
    yield RabbitBus(AMQP_URL, attempts=3), queue
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.queue_delete(f"{queue}.dead")


class Line:
    """Gateway → bus → consumer, the way `mornet up` wires them."""

    def __init__(self, runtime: Runtime, events: Bus) -> None:
        self.bus = events
        self.gateway = Gateway(runtime.sessions, events)
        self.consumer = ReadingsConsumer(runtime.sessions)

    async def start(self, queue: str) -> None:
        await self.bus.consume(
            READINGS, queue, self.consumer.handle, dead_letter=self.consumer.dead_letter
        )


@pytest.fixture
async def line(runtime: Runtime, events: tuple[Bus, str]) -> AsyncIterator[Line]:
    running = Line(runtime, events[0])
    await running.start(events[1])
    yield running
    await running.bus.close()


@pytest.fixture
async def agent(client: httpx.AsyncClient, session: AsyncSession) -> FakeAgent:
    _, headers = await user_with_token(client, session)
    return await provision(client, headers)


async def _stored(session: AsyncSession, household_id: str) -> set[tuple[str, int]]:
    session.expire_all()
    rows = await session.execute(
        select(Reading.device_id, Reading.seq).where(
            Reading.household_id == uuid.UUID(household_id)
        )
    )
    return {(d, s) for d, s in rows.all()}


async def _reasons(session: AsyncSession) -> list[str]:
    session.expire_all()
    return list((await session.scalars(select(DeadLetter.reason))).all())


async def _publish(line: Line, agent: FakeAgent, readings: list[dict[str, object]]) -> bool:
    # The in-process bus returns from publish only once the consumer handled the message,
    # so run it beside the test rather than awaiting it in line.
    return await asyncio.wait_for(line.gateway.handle(agent.topic, agent.message(readings)), 60)


async def test_a_reading_from_year_one_is_dead_lettered_and_the_stream_flows(
    line: Line, agent: FakeAgent, session: AsyncSession
) -> None:
    ancient = {**plug(1, 10.0), "ts": "0001-01-01T00:00:00+01:00"}
    assert not await _publish(line, agent, [ancient])
    assert not await _publish(line, agent, [{**plug(2, 10.0), "ts": "1999-12-31T23:59:59Z"}])
    assert await _publish(line, agent, [plug(3, 11.0)])

    async def valid_one_stored() -> bool:
        return await _stored(session, agent.household_id) == {("plug-1", 3)}

    await eventually(valid_one_stored, within=10)
    reasons = await _reasons(session)
    assert any("ts is out of range" in r for r in reasons)
    assert any("before 2000-01-01" in r for r in reasons)


async def test_alternating_huge_counters_in_one_message_are_refused_at_the_gateway(
    line: Line, agent: FakeAgent, session: AsyncSession
) -> None:
    flapping = [plug(seq, 1e12 if seq % 2 else 0.0) for seq in range(1, 7)]
    assert not await _publish(line, agent, flapping)
    assert await _publish(line, agent, [plug(10, 5.0)])

    async def valid_one_stored() -> bool:
        return await _stored(session, agent.household_id) == {("plug-1", 10)}

    await eventually(valid_one_stored, within=10)
    assert any("exceeds the physical bound" in r for r in await _reasons(session))


async def test_a_huge_step_from_the_stored_counter_is_dead_lettered_by_the_consumer(
    line: Line, agent: FakeAgent, session: AsyncSession
) -> None:
    # Each message alone is plausible; only against the stored counter is the step absurd.
    assert await _publish(line, agent, [plug(1, 1000.0)])
    assert await _publish(line, agent, [plug(2, 1e12)])  # a billion kWh one minute later
    for seq in range(3, 8):
        assert await _publish(line, agent, [plug(seq, 1000.0 + seq)])

    async def the_rest_stored() -> bool:
        return await _stored(session, agent.household_id) == {
            ("plug-1", s) for s in (1, 3, 4, 5, 6, 7)
        }

    await eventually(the_rest_stored, within=20)

    async def dead_lettered() -> bool:
        return any(
            "could not be stored" in r and "exceeds the physical bound" in r
            for r in await _reasons(session)
        )

    await eventually(dead_lettered, within=10)
    assert line.consumer.dead_lettered == 1


async def test_a_batch_that_cannot_be_stored_is_isolated_and_dead_lettered(
    line: Line, agent: FakeAgent, session: AsyncSession
) -> None:
    """A batch put on the bus by something other than the gateway, whose value overflows
    storage: the store fails, the message is dead-lettered, the next one is stored."""
    household = uuid.UUID(agent.household_id)
    poison = NormalisedBatch(
        household_id=household,
        agent_id=None,
        readings=[
            NormalisedReading(
                device_id="meter-x",
                resource="W",
                ts=T0,
                seq=1,
                counter=Decimal("1e20"),
            )
        ],
    )
    good = NormalisedBatch(
        household_id=household,
        agent_id=None,
        readings=[
            NormalisedReading(
                device_id="meter-x", resource="W", ts=T0 + timedelta(hours=1), seq=2, counter=1
            )
        ],
    )
    publishing = asyncio.gather(
        line.bus.publish(READINGS, poison.model_dump_json().encode()),
        line.bus.publish(READINGS, b"{not a batch"),
        line.bus.publish(READINGS, good.model_dump_json().encode()),
    )
    await asyncio.wait_for(publishing, 60)

    async def good_stored() -> bool:
        return await _stored(session, agent.household_id) == {("meter-x", 2)}

    await eventually(good_stored, within=20)

    async def both_dead() -> bool:
        return len([r for r in await _reasons(session) if "could not be stored" in r]) == 2

    await eventually(both_dead, within=10)


async def test_isolate_splits_until_the_failing_message_is_alone() -> None:
    handled: list[bytes] = []
    calls = 0

    async def handler(bodies: list[bytes]) -> None:
        nonlocal calls
        calls += 1
        if b"poison" in bodies:
            raise ValueError("cannot digest poison")
        handled.extend(bodies)

    bodies = [f"m{i}".encode() for i in range(10)]
    bodies[6] = b"poison"
    dead = await isolate(handler, bodies, attempts=2, name="test")
    assert dead == {6: "ValueError: cannot digest poison"}
    assert sorted(handled) == sorted(b for b in bodies if b != b"poison")


async def test_isolate_waits_out_an_outage_without_dead_lettering() -> None:
    outage = 3

    async def handler(bodies: list[bytes]) -> None:
        nonlocal outage
        if outage:
            outage -= 1
            raise ConnectionRefusedError("database down")

    dead = await asyncio.wait_for(isolate(handler, [b"a", b"b"], attempts=1, name="t"), 10)
    assert dead == {}
    assert outage == 0


async def test_unprocessable_is_not_retried() -> None:
    calls: list[int] = []

    async def handler(bodies: list[bytes]) -> None:
        calls.append(len(bodies))
        raise Unprocessable("never")

    dead = await isolate(handler, [b"x"], attempts=50, name="t")
    assert dead == {0: "Unprocessable: never"}
    assert calls == [1]


async def test_rabbitmq_keeps_the_dead_letter_with_its_reason(
    runtime: Runtime, agent: FakeAgent
) -> None:
    queue = f"test-dlq-{uuid.uuid4().hex[:10]}"
    events = RabbitBus(AMQP_URL, attempts=2)
    consumer = ReadingsConsumer(runtime.sessions)
    await events.consume(READINGS, queue, consumer.handle, dead_letter=consumer.dead_letter)
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await events.publish(READINGS, b"garbage")

        async def buried() -> bool:
            return consumer.dead_lettered == 1

        await eventually(buried, within=20)
        channel = await connection.channel()
        dead_queue = await channel.declare_queue(f"{queue}.dead", durable=True)
        message = await dead_queue.get(timeout=5)
        assert message.body == b"garbage"
        headers = message.headers or {}
        reason = str(headers["x-mornet-reason"])
        assert reason.startswith("Unprocessable: not a normalised batch")
        await message.ack()
        # Nothing is left to redeliver: the poison is out of the work queue.
        work = await channel.declare_queue(queue, durable=True)
        assert work.declaration_result.message_count == 0
    finally:
        await events.close()
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.queue_delete(f"{queue}.dead")

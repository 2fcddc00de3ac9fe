"""The event outbox: recorded with the change, published after the commit, handled once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet import outbox
from mornet.bus import Bus, InProcessBus, RabbitBus
from mornet.db import unit_of_work, utcnow
from mornet.outbox import (
    DomainEvent,
    EventDeadLetter,
    OutboxEvent,
    ProcessedEvent,
    Relay,
    Subscription,
)
from mornet.runtime import Runtime
from tests.brokers import AMQP_URL
from tests.polling import eventually


class DepositConfirmed(DomainEvent):
    topic: ClassVar[str] = "test.deposit.confirmed"

    deposit: str
    amount: int


class MintRequested(DomainEvent):
    """What the consumer under test records in its own transaction: its observable effect."""

    topic: ClassVar[str] = "test.mint.requested"

    deposit: str
    amount: int


async def _request_mint(session: AsyncSession, event: DepositConfirmed) -> None:
    await outbox.record(session, MintRequested(deposit=event.deposit, amount=event.amount))


async def _mints(runtime: Runtime) -> list[tuple[str, int]]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.topic == MintRequested.topic)
            .order_by(OutboxEvent.seq)
        )
        return [(row.payload["deposit"], row.payload["amount"]) for row in rows]


async def _confirm(runtime: Runtime, deposit: str, amount: int) -> uuid.UUID:
    async with unit_of_work(runtime.sessions) as session:
        return await outbox.record(session, DepositConfirmed(deposit=deposit, amount=amount))


async def _true(condition: bool) -> bool:
    return condition


@pytest.fixture
async def in_process() -> AsyncIterator[InProcessBus]:
    events = InProcessBus(attempts=2)
    yield events
    await events.close()


def _minting(consumer: str = "test.minting") -> Subscription[DepositConfirmed]:
    return Subscription(consumer, DepositConfirmed, _request_mint)


async def test_an_event_exists_only_if_its_transaction_committed(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    consumer = await outbox.subscribe(in_process, runtime.sessions, _minting())
    relay = Relay(runtime.sessions, in_process)
    async with runtime.sessions() as session:
        await outbox.record(session, DepositConfirmed(deposit="rolled-back", amount=1))
        await session.rollback()
    await _confirm(runtime, "d-1", 500)

    # The committed deposit, then the mint request its consumer recorded.
    assert await relay.drain() == 2
    assert consumer.handled == 1
    assert await _mints(runtime) == [("d-1", 500)]
    async with runtime.sessions() as session:
        unpublished = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    assert unpublished == 0
    assert await relay.drain() == 0


async def test_a_redelivered_event_is_handled_once(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    """The relay crashed after publishing and before marking: it publishes again."""
    consumer = await outbox.subscribe(in_process, runtime.sessions, _minting())
    relay = Relay(runtime.sessions, in_process)
    event_id = await _confirm(runtime, "d-1", 500)
    await relay.drain()
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id).values(published_at=None)
        )
    assert await relay.drain() == 1

    assert consumer.handled == 1
    assert consumer.redelivered == 1
    assert await _mints(runtime) == [("d-1", 500)]


async def test_a_batch_claims_its_events_at_once_and_handles_each_once(
    runtime: Runtime,
) -> None:
    """One delivered batch: an event handled before, a new one, and the new one again (a bus
    may repeat a message inside a batch). Only the new one is handled, once."""
    consumer = outbox.Consumer(runtime.sessions, _minting())
    old = outbox.Envelope(
        id=uuid.uuid4(),
        topic=DepositConfirmed.topic,
        occurred_at=utcnow(),
        data={"deposit": "d-old", "amount": 1},
    )
    new = old.model_copy(update={"id": uuid.uuid4(), "data": {"deposit": "d-new", "amount": 2}})
    await consumer.handle([old.model_dump_json().encode()])
    await consumer.handle([body.model_dump_json().encode() for body in (old, new, new)])

    assert (consumer.handled, consumer.redelivered) == (2, 2)
    assert await _mints(runtime) == [("d-old", 1), ("d-new", 2)]


async def test_each_consumer_handles_an_event_once_on_its_own(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    first = await outbox.subscribe(in_process, runtime.sessions, _minting("test.first"))
    second = await outbox.subscribe(in_process, runtime.sessions, _minting("test.second"))
    await _confirm(runtime, "d-1", 7)
    await Relay(runtime.sessions, in_process).drain()
    assert (first.handled, second.handled) == (1, 1)
    assert await _mints(runtime) == [("d-1", 7), ("d-1", 7)]


async def test_a_handler_that_keeps_failing_dead_letters_its_event_and_the_rest_flow(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    async def refuse_the_odd_one(session: AsyncSession, event: DepositConfirmed) -> None:
        if event.deposit == "poison":
            raise RuntimeError("the deposit's order is unknown")
        await _request_mint(session, event)

    consumer = await outbox.subscribe(
        in_process,
        runtime.sessions,
        Subscription("test.minting", DepositConfirmed, refuse_the_odd_one),
    )
    for deposit in ("d-1", "poison", "d-2"):
        await _confirm(runtime, deposit, 10)
    await Relay(runtime.sessions, in_process).drain()

    assert sorted(await _mints(runtime)) == [("d-1", 10), ("d-2", 10)]
    assert consumer.dead_lettered == 1
    async with runtime.sessions() as session:
        dead = await outbox.dead_letters(session)
        processed = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert len(dead) == 1
    assert dead[0].consumer == "test.minting"
    assert dead[0].topic == DepositConfirmed.topic
    assert "the deposit's order is unknown" in dead[0].reason
    assert '"poison"' in dead[0].body
    # The failed event's claim was rolled back with its handler's transaction.
    assert processed == 2


async def test_a_handler_failing_once_is_retried_and_its_change_happens_once(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    calls = 0

    async def flaky(session: AsyncSession, event: DepositConfirmed) -> None:
        nonlocal calls
        calls += 1
        await _request_mint(session, event)
        if calls == 1:
            raise RuntimeError("lost the connection after writing")

    consumer = await outbox.subscribe(
        in_process, runtime.sessions, Subscription("test.minting", DepositConfirmed, flaky)
    )
    await _confirm(runtime, "d-1", 3)
    await Relay(runtime.sessions, in_process).drain()
    assert calls == 2
    assert consumer.handled == 1
    assert await _mints(runtime) == [("d-1", 3)]


async def test_a_message_that_is_not_an_event_is_dead_lettered_with_the_reason(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    consumer = await outbox.subscribe(in_process, runtime.sessions, _minting())
    await in_process.publish(DepositConfirmed.topic, b'{"id": "nope"}')
    await in_process.publish(
        DepositConfirmed.topic,
        b'{"id": "9b7e1c3a-0000-4000-8000-000000000001", "topic": "test.deposit.confirmed",'
        b' "occurred_at": "2026-11-25T12:00:00Z", "data": {"deposit": "d-1"}}',
    )
    assert consumer.dead_lettered == 2
    async with runtime.sessions() as session:
        dead = sorted(await outbox.dead_letters(session), key=lambda d: d.reason)
    assert all("not a test.deposit.confirmed event" in d.reason for d in dead)
    assert any("amount" in d.reason for d in dead)
    assert await _mints(runtime) == []


async def test_the_relay_publishes_when_woken_by_a_commit_never_before(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    consumer = await outbox.subscribe(in_process, runtime.sessions, _minting())
    relay = Relay(runtime.sessions, in_process)
    # A long poll interval: only the commit's wake-up can publish within the test's wait.
    task = asyncio.create_task(relay.run_forever(idle_seconds=60))
    try:
        await asyncio.sleep(0.1)
        async with runtime.sessions() as session:
            await outbox.record(session, DepositConfirmed(deposit="d-1", amount=1))
            await asyncio.sleep(0.3)
            assert consumer.handled == 0
            await session.commit()
        await eventually(lambda: _true(consumer.handled == 1), within=10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _mints(runtime) == [("d-1", 1)]


async def test_published_events_and_old_processed_ids_are_pruned(
    runtime: Runtime, in_process: InProcessBus
) -> None:
    from datetime import timedelta

    await outbox.subscribe(in_process, runtime.sessions, _minting())
    relay = Relay(runtime.sessions, in_process, keep_published=timedelta(0))
    await _confirm(runtime, "d-1", 1)
    await relay.drain()
    waiting = await _confirm(runtime, "d-2", 1)
    relay.keep_processed = timedelta(0)
    await relay.prune()
    async with runtime.sessions() as session:
        left = list(await session.scalars(select(OutboxEvent.id)))
        processed = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    # What is not published yet stays, however old.
    assert left == [waiting]
    assert processed == 0


async def test_events_cross_rabbitmq_and_a_republished_event_is_handled_once(
    runtime: Runtime, rabbit_queue: str
) -> None:
    consuming: Bus = RabbitBus(AMQP_URL, attempts=2)
    publishing: Bus = RabbitBus(AMQP_URL)
    try:
        consumer = await outbox.subscribe(consuming, runtime.sessions, _minting(rabbit_queue))
        relay = Relay(runtime.sessions, publishing)
        first = await _confirm(runtime, "d-1", 100)
        await _confirm(runtime, "d-2", 200)
        assert await relay.drain() == 2
        await eventually(lambda: _true(consumer.handled == 2))
        async with unit_of_work(runtime.sessions) as session:
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id == first).values(published_at=None)
            )
        await relay.drain()
        await eventually(lambda: _true(consumer.redelivered == 1))
        assert consumer.handled == 2
        assert consumer.redelivered == 1
        assert sorted(await _mints(runtime)) == [("d-1", 100), ("d-2", 200)]
        async with runtime.sessions() as session:
            assert not await session.scalar(select(func.count()).select_from(EventDeadLetter))
    finally:
        await consuming.close()
        await publishing.close()

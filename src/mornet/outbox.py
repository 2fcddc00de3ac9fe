"""The event outbox: how one context tells the others what happened, exactly once in effect.

- A context defines its events in `<context>/events.py` (subclasses of `DomainEvent`) and
  `record`s one in the same transaction as the change it describes, so the event exists if
  and only if the change committed.
- The `Relay` publishes recorded events to the bus after the commit, oldest first, and marks
  them published. A crash between the two publishes them again: delivery is at least once.
- A consumer (`Subscription`) claims each event id in the transaction of its own change, so
  a redelivered event is a no-op. A handler that keeps failing hits the bus's retry limit and
  the event goes to `event_dead_letters` with the reason; the events behind it flow on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from mornet import bus
from mornet.db import (
    Base,
    UTCDateTime,
    insert_for,
    set_after_commit,
    table_of,
    unit_of_work,
    utcnow,
)
from mornet.errors import describe

log = structlog.get_logger(__name__)


class DomainEvent(BaseModel):
    """Something that happened in a context, in its words. `topic` names it on the bus
    (`<context>.<thing>.<past tense>`); the fields are its payload, plain JSON on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    topic: ClassVar[str]

    def log_line(self) -> LogLine | None:
        """How the event reads in the platform's event log (None: it is not a notable one)."""
        return None


@dataclass(frozen=True)
class LogLine:
    """One entry of the event log: what happened, who did it (None: the platform), and the
    object it is about (a kind and an id, so a page can link to it)."""

    summary: str
    actor_id: uuid.UUID | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    amount: Decimal | None = None


E = TypeVar("E", bound=DomainEvent)


class Envelope(BaseModel):
    """An event on the bus: its id (what consumers deduplicate on), topic, time and payload."""

    id: uuid.UUID
    topic: str
    occurred_at: datetime
    data: dict[str, Any]


class OutboxEvent(Base):
    """An event recorded with the change it describes, waiting for (or done with) the relay."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_unpublished", "published_at", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    """Commit-independent order of recording: the relay publishes oldest first."""
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ProcessedEvent(Base):
    """An event a consumer has handled; written in the consumer's own transaction."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class EventDeadLetter(Base):
    """An event a consumer could not handle, kept with the reason for an operator."""

    __tablename__ = "event_dead_letters"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    consumer: Mapped[str] = mapped_column(String(100), index=True)
    event_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    topic: Mapped[str | None] = mapped_column(String(100), default=None)
    body: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Relays running in this process, woken when a transaction that recorded an event commits.
_wakes: set[asyncio.Event] = set()


async def record(session: AsyncSession, event: DomainEvent) -> uuid.UUID:
    """Record `event` in the caller's transaction; the relay publishes it once that commits.
    Returns the event's id."""
    event_id = uuid.uuid4()
    # A Core insert: an event is never read back in the transaction that records it, so it
    # need not pass through the session's unit of work (a flush per event).
    await session.execute(
        insert(table_of(OutboxEvent)).values(
            id=event_id,
            topic=event.topic,
            payload=event.model_dump(mode="json"),
            occurred_at=utcnow(),
        )
    )
    for wake in _wakes:
        set_after_commit(session, wake)
    return event_id


def _envelope(row: OutboxEvent) -> bytes:
    envelope = Envelope(id=row.id, topic=row.topic, occurred_at=row.occurred_at, data=row.payload)
    return envelope.model_dump_json().encode()


class Relay:
    """Publishes recorded events to the bus. Several relays may run (one per process): on
    PostgreSQL each takes its rows with SKIP LOCKED; any overlap is absorbed by consumers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: bus.Bus,
        *,
        batch: int = 100,
        keep_published: timedelta = timedelta(days=7),
        keep_processed: timedelta = timedelta(days=30),
    ) -> None:
        self.sessions = sessions
        self.bus = events
        self.batch = batch
        self.keep_published = keep_published
        self.keep_processed = keep_processed
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Publish one batch of unpublished events. Returns how many."""
        async with self.sessions() as session:
            rows = list(
                await session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.published_at.is_(None))
                    .order_by(OutboxEvent.seq)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return 0
            if session.get_bind().dialect.name == "sqlite":
                # SQLite has no row locks: end the read now, or a consumer's write committed
                # while we publish would make our update below fail as a stale snapshot.
                await session.commit()
            for row in rows:
                await self.bus.publish(row.topic, _envelope(row))
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.seq.in_([row.seq for row in rows]))
                .values(published_at=utcnow())
            )
            await session.commit()
        return len(rows)

    async def drain(self) -> int:
        """Publish until nothing is left (tests, commands). Returns how many."""
        total = 0
        while published := await self.run_once():
            total += published
        return total

    async def prune(self) -> None:
        """Forget published events and processed ids past their keeping time (a redelivery
        older than `keep_processed` would be handled again: keep it above any bus retention)."""
        now = utcnow()
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                delete(OutboxEvent).where(OutboxEvent.published_at < now - self.keep_published)
            )
            await session.execute(
                delete(ProcessedEvent).where(
                    ProcessedEvent.processed_at < now - self.keep_processed
                )
            )

    async def run_forever(
        self, *, idle_seconds: float = 1.0, prune_every: timedelta = timedelta(hours=1)
    ) -> None:
        """Publish as events commit (woken by the commit), polling as a safety net."""
        _wakes.add(self.wake)
        next_prune = utcnow()
        try:
            while True:
                try:
                    published = await self.run_once()
                    if utcnow() >= next_prune:
                        await self.prune()
                        next_prune = utcnow() + prune_every
                except Exception:
                    log.exception("outbox.relay_round_failed")
                    published = 0
                if not published:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout=idle_seconds)
        finally:
            _wakes.discard(self.wake)


EventHandler = Callable[[AsyncSession, E], Awaitable[None]]


@dataclass(frozen=True)
class Subscription(Generic[E]):
    """A consumer of one event type. `consumer` is its durable name: the bus queue and the
    key of the ids it processed — keep it stable, or events are handled again."""

    consumer: str
    event_type: type[E]
    handler: EventHandler[E]


async def _claim(
    session: AsyncSession, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Mark the events processed by `consumer` in this transaction (one statement); returns
    the ids that were not processed before."""
    now = utcnow()
    claimed = await session.execute(
        insert_for(session, ProcessedEvent)
        .values(
            [
                {"consumer": consumer, "event_id": event_id, "processed_at": now}
                for event_id in dict.fromkeys(event_ids)
            ]
        )
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(ProcessedEvent.event_id)
    )
    return set(claimed.scalars())


class Consumer(Generic[E]):
    """Hands a subscription its events from the bus, each at most once, in one transaction
    per delivered batch (the bus splits a batch to find the event that fails on its own)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], subscription: Subscription[E]
    ) -> None:
        self.sessions = sessions
        self.subscription = subscription
        self.handled = 0
        self.redelivered = 0
        self.dead_lettered = 0

    def _parse(self, body: bytes) -> tuple[Envelope, E]:
        try:
            envelope = Envelope.model_validate_json(body)
            event = self.subscription.event_type.model_validate(envelope.data)
        except ValidationError as exc:
            raise bus.Unprocessable(
                f"not a {self.subscription.event_type.topic} event: {describe(exc)}"
            ) from exc
        return envelope, event

    async def handle(self, bodies: list[bytes]) -> None:
        events = [self._parse(body) for body in bodies]
        handled = redelivered = 0
        async with unit_of_work(self.sessions) as session:
            claimed = await _claim(
                session, self.subscription.consumer, [envelope.id for envelope, _ in events]
            )
            for envelope, event in events:
                if envelope.id not in claimed:
                    redelivered += 1
                    continue
                claimed.discard(envelope.id)  # the same event twice in one batch: once
                await self.subscription.handler(session, event)
                handled += 1
        self.handled += handled
        self.redelivered += redelivered

    async def dead_letter(self, body: bytes, reason: str) -> None:
        event_id = topic = None
        with contextlib.suppress(ValidationError):
            envelope = Envelope.model_validate_json(body)
            event_id, topic = envelope.id, envelope.topic
        async with unit_of_work(self.sessions) as session:
            session.add(
                EventDeadLetter(
                    consumer=self.subscription.consumer,
                    event_id=event_id,
                    topic=topic,
                    body=body.decode("utf-8", "replace"),
                    reason=reason[:2000],
                )
            )
        self.dead_lettered += 1


async def subscribe(
    events: bus.Bus,
    sessions: async_sessionmaker[AsyncSession],
    subscription: Subscription[Any],
) -> Consumer[Any]:
    """Start delivering `subscription`'s events to its handler."""
    consumer = Consumer(sessions, subscription)
    await events.consume(
        subscription.event_type.topic,
        subscription.consumer,
        consumer.handle,
        dead_letter=consumer.dead_letter,
    )
    return consumer


async def dead_letters(session: AsyncSession, *, limit: int = 100) -> Sequence[EventDeadLetter]:
    """The newest events that no consumer could handle (operators)."""
    rows = await session.scalars(
        select(EventDeadLetter).order_by(EventDeadLetter.created_at.desc()).limit(limit)
    )
    return rows.all()

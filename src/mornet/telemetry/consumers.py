"""The telemetry pipeline's handlers: MQTT message → gateway → bus → stored readings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet import bus
from mornet.db import unit_of_work
from mornet.errors import describe
from mornet.households import service as households
from mornet.telemetry import service
from mornet.telemetry.schemas import (
    NormalisedBatch,
    NormalisedBundle,
    UnitBatch,
    UnitBundle,
    encode_bundle,
)

log = structlog.get_logger(__name__)
MAX_BUNDLE = 50
"""The most MQTT messages' batches the gateway puts in one bus message."""
BUNDLE_LINGER_SECONDS = 0.005
"""How long an accepted batch waits for others to share its bus message."""


class Gateway:
    """Turns each MQTT message into a verified batch on the bus, or a dead letter. Returns
    only when one of the two is durable, so the caller may then acknowledge the message."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: bus.Bus,
        *,
        agent_cache_seconds: float = 0,
        bundle_size: int = MAX_BUNDLE,
    ) -> None:
        self.sessions = sessions
        self.events = events
        self.accepted = 0
        self.rejected = 0
        # Agent credentials change rarely; caching them saves a query per message. A revoked
        # agent is refused at most `agent_cache_seconds` later.
        self.agent_cache_seconds = agent_cache_seconds
        self._agents: dict[uuid.UUID, tuple[float, households.GatewayAgent | None]] = {}
        self.bundle_size = bundle_size
        self._bundle: list[tuple[UnitBatch, asyncio.Future[None]]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._publishing: set[asyncio.Task[None]] = set()

    async def _agent(self, agent_id: uuid.UUID) -> households.GatewayAgent | None:
        now = time.monotonic()
        cached = self._agents.get(agent_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.sessions() as session:
            agent = await households.agent_for_gateway(session, agent_id)
        if self.agent_cache_seconds > 0:
            self._agents[agent_id] = (now + self.agent_cache_seconds, agent)
        return agent

    async def _accept(self, topic: str, payload: bytes) -> UnitBatch:
        try:
            return await service.accept_message(topic, payload, lookup=self._agent)
        except (SQLAlchemyError, OSError, service.Rejected):
            # A database outage propagates: the message stays unacknowledged and is retried.
            raise
        except Exception as exc:
            # A message that trips a bug must not block the stream behind it.
            log.exception("telemetry.unexpected_error", topic=topic)
            raise service.Rejected(f"could not be processed: {exc!r}"[:2000]) from exc

    async def handle(self, topic: str, payload: bytes) -> bool:
        try:
            batch = await self._accept(topic, payload)
        except service.Rejected as rejection:
            async with unit_of_work(self.sessions) as session:
                await service.record_dead_letter(
                    session,
                    topic=topic,
                    payload=payload,
                    reason=rejection.reason,
                    agent_id=rejection.agent_id,
                )
            self.rejected += 1
            log.warning("telemetry.rejected", topic=topic, reason=rejection.reason)
            return False
        await self._send(batch)
        self.accepted += 1
        return True

    async def _send(self, batch: UnitBatch) -> None:
        """Put `batch` on the bus in a bundle with the batches accepted meanwhile; returns
        once that bundle is on the bus (raises if it could not be put there)."""
        sent = asyncio.get_running_loop().create_future()
        self._bundle.append((batch, sent))
        if len(self._bundle) >= self.bundle_size:
            self._flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                BUNDLE_LINGER_SECONDS, self._flush
            )
        await sent

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        bundle, self._bundle = self._bundle, []
        if bundle:
            task = asyncio.create_task(self._publish(bundle))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish(self, bundle: list[tuple[UnitBatch, asyncio.Future[None]]]) -> None:
        body = encode_bundle([batch for batch, _ in bundle])
        try:
            await self.events.publish(bus.READINGS, body)
        except Exception as exc:
            # Each message's handler raises: its MQTT message stays unacknowledged and is
            # retried, never lost.
            for _, sent in bundle:
                if not sent.done():
                    sent.set_exception(exc)
            return
        for _, sent in bundle:
            if not sent.done():
                sent.set_result(None)


def _batches_of(body: bytes) -> list[UnitBatch]:
    """The batches of a bus message: a gateway's bundle in units, or the decimal forms
    gateways sent before (a bundle, or one batch, as refused batches were kept)."""
    try:
        return UnitBundle.model_validate_json(body).unit_batches()
    except ValidationError as exc:
        for earlier in (NormalisedBundle, NormalisedBatch):
            try:
                parsed = earlier.model_validate_json(body)
            except ValidationError:
                continue
            batches = parsed.batches if isinstance(parsed, NormalisedBundle) else [parsed]
            return [batch.in_units() for batch in batches]
        raise bus.Unprocessable(f"not a normalised batch or bundle: {describe(exc)}") from exc


class ReadingsConsumer:
    """Stores batches from the bus; safe to run again on a redelivered message."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, keep_days: int = 0) -> None:
        self.sessions = sessions
        self.keep_days = keep_days
        self.stored = 0
        self.duplicates = 0
        self.dead_lettered = 0

    async def handle(self, bodies: list[bytes]) -> None:
        """Store a delivery of bundles (or single batches) in one transaction. When a batch
        is refused, the others are stored on their own and the refused ones kept as dead
        letters, so one household's bad batch never holds back the bundle's others."""
        batches = [batch for body in bodies for batch in _batches_of(body)]
        try:
            await self._store(batches)
        except bus.Unprocessable:
            if len(batches) == 1:
                raise  # the bus keeps it as a dead letter, with the reason
            for batch in batches:
                try:
                    await self._store([batch])
                except bus.Unprocessable as exc:
                    await self.dead_letter(encode_bundle([batch]), str(exc))

    async def _store(self, batches: list[UnitBatch]) -> None:
        async with unit_of_work(self.sessions) as session:
            result = await service.store_batches(session, batches, keep_days=self.keep_days)
        self.stored += result.new
        self.duplicates += result.duplicate

    async def dead_letter(self, body: bytes, reason: str) -> None:
        """Keep a batch the store refused, beside the gateway's dead letters."""
        agent_id: str | None = None
        with contextlib.suppress(ValueError, TypeError, AttributeError, LookupError):
            message = json.loads(body)
            # A bundle of one batch (what the consumer keeps) or a single batch.
            batch = message["batches"][0] if "batches" in message else message
            agent_id = str(batch.get("agent_id") or "") or None
        async with unit_of_work(self.sessions) as session:
            await service.record_dead_letter(
                session,
                topic=f"bus:{bus.READINGS}",
                payload=body,
                reason=f"could not be stored: {reason}",
                agent_id=agent_id,
            )
        self.dead_lettered += 1

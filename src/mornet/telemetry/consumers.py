"""The telemetry pipeline's handlers: MQTT message → gateway → bus → stored readings."""

from __future__ import annotations

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
from mornet.telemetry.schemas import NormalisedBatch

log = structlog.get_logger(__name__)


class Gateway:
    """Turns each MQTT message into a verified batch on the bus, or a dead letter. Returns
    only when one of the two is durable, so the caller may then acknowledge the message."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        events: bus.Bus,
        *,
        agent_cache_seconds: float = 0,
    ) -> None:
        self.sessions = sessions
        self.events = events
        self.accepted = 0
        self.rejected = 0
        # Agent credentials change rarely; caching them saves a query per message. A revoked
        # agent is refused at most `agent_cache_seconds` later.
        self.agent_cache_seconds = agent_cache_seconds
        self._agents: dict[uuid.UUID, tuple[float, households.GatewayAgent | None]] = {}

    async def _agent(
        self, session: AsyncSession, agent_id: uuid.UUID
    ) -> households.GatewayAgent | None:
        now = time.monotonic()
        cached = self._agents.get(agent_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        agent = await households.agent_for_gateway(session, agent_id)
        if self.agent_cache_seconds > 0:
            self._agents[agent_id] = (now + self.agent_cache_seconds, agent)
        return agent

    async def _accept(self, topic: str, payload: bytes) -> NormalisedBatch:
        try:
            async with self.sessions() as session:
                return await service.accept_message(session, topic, payload, lookup=self._agent)
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
        await self.events.publish(bus.READINGS, batch.model_dump_json().encode())
        self.accepted += 1
        return True


class ReadingsConsumer:
    """Stores batches from the bus; safe to run again on a redelivered message."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.stored = 0
        self.duplicates = 0
        self.dead_lettered = 0

    async def handle(self, bodies: list[bytes]) -> None:
        """Store a delivery of batches in one transaction."""
        try:
            batches = [NormalisedBatch.model_validate_json(body) for body in bodies]
        except ValidationError as exc:
            raise bus.Unprocessable(f"not a normalised batch: {describe(exc)}") from exc
        async with unit_of_work(self.sessions) as session:
            result = await service.store_batches(session, batches)
        self.stored += result.new
        self.duplicates += result.duplicate

    async def dead_letter(self, body: bytes, reason: str) -> None:
        """Keep a batch the store refused, beside the gateway's dead letters."""
        agent_id: str | None = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            agent_id = str(json.loads(body).get("agent_id") or "") or None
        async with unit_of_work(self.sessions) as session:
            await service.record_dead_letter(
                session,
                topic=f"bus:{bus.READINGS}",
                payload=body,
                reason=f"could not be stored: {reason}",
                agent_id=agent_id,
            )
        self.dead_lettered += 1

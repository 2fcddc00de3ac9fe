"""The telemetry pipeline's handlers: MQTT message → gateway → bus → stored readings."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet import bus
from mornet.db import unit_of_work
from mornet.telemetry import service
from mornet.telemetry.schemas import NormalisedBatch

log = structlog.get_logger(__name__)


class Gateway:
    """Turns each MQTT message into a verified batch on the bus, or a dead letter. Returns
    only when one of the two is durable, so the caller may then acknowledge the message."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], events: bus.Bus) -> None:
        self.sessions = sessions
        self.events = events
        self.accepted = 0
        self.rejected = 0

    async def handle(self, topic: str, payload: bytes) -> bool:
        try:
            async with self.sessions() as session:
                batch = await service.accept_message(session, topic, payload)
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

    async def handle(self, body: bytes) -> None:
        batch = NormalisedBatch.model_validate_json(body)
        async with unit_of_work(self.sessions) as session:
            result = await service.store_batch(session, batch)
        self.stored += result.new
        self.duplicates += result.duplicate

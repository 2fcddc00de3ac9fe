"""Starting the telemetry roles inside a process: bus consumer, broker, gateway."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.bus import READINGS, Bus
from mornet.config import Settings
from mornet.households import service as households
from mornet.telemetry.broker import EmbeddedBroker
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from mornet.telemetry.mqtt import Subscriber
from mornet.wire.broker import BrokerAddress
from mornet.wire.telemetry import TOPIC_PREFIX, TOPIC_SUFFIX

log = structlog.get_logger(__name__)
AGENT_CACHE_SECONDS = 10.0
"""A revoked agent's messages are refused at most this long after the revocation."""


@dataclass
class Telemetry:
    """The telemetry roles of this process; the bus is the process's (closed by its owner)."""

    bus: Bus
    gateway: Gateway
    consumer: ReadingsConsumer
    subscriber: Subscriber | None = None
    broker: EmbeddedBroker | None = None

    async def close(self) -> None:
        if self.subscriber is not None:
            await self.subscriber.stop()
        if self.broker is not None:
            await self.broker.stop()


async def start_telemetry(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    *,
    gateway: bool = True,
    consumer: bool = True,
) -> Telemetry:
    telemetry = Telemetry(
        bus=bus,
        gateway=Gateway(sessions, bus, agent_cache_seconds=AGENT_CACHE_SECONDS),
        consumer=ReadingsConsumer(sessions, keep_days=settings.readings_keep_days),
    )
    if consumer:
        await bus.consume(
            READINGS,
            settings.readings_queue,
            telemetry.consumer.handle,
            dead_letter=telemetry.consumer.dead_letter,
        )
    if not gateway:
        return telemetry
    if settings.mqtt_url is None:

        async def verify_agent(agent_id: uuid.UUID, secret: str) -> uuid.UUID | None:
            async with sessions() as session:
                agent = await households.authenticate_agent(
                    session, agent_id=agent_id, secret=secret
                )
                return agent.household_id if agent is not None else None

        telemetry.broker = EmbeddedBroker(
            host=settings.mqtt_host, port=settings.mqtt_port, verify_agent=verify_agent
        )
        await telemetry.broker.start()
        address, shared = BrokerAddress.parse(telemetry.broker.gateway_url), None
    else:
        address, shared = BrokerAddress.parse(settings.mqtt_url), settings.mqtt_shared_group
    telemetry.subscriber = Subscriber(
        address,
        topic=f"{TOPIC_PREFIX}+{TOPIC_SUFFIX}",
        client_id=settings.mqtt_client_id,
        handler=telemetry.gateway.handle,
        shared_group=shared,
        ca_file=settings.mqtt_ca_file if settings.mqtt_url else None,
    )
    await telemetry.subscriber.start()
    return telemetry

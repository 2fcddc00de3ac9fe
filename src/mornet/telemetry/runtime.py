"""Starting the telemetry roles inside a process: bus consumer, broker, gateway, and the
simulated households of `mornet up --simulate N`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.agent.config import AgentConfig
from mornet.agent.runner import Agent
from mornet.bus import READINGS, Bus, InProcessBus, RabbitBus
from mornet.config import Settings
from mornet.db import unit_of_work
from mornet.households import service as households
from mornet.telemetry.broker import EmbeddedBroker
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from mornet.telemetry.mqtt import Subscriber
from mornet.wallets.crypto import WalletCipher
from mornet.wire.broker import BrokerAddress
from mornet.wire.telemetry import TOPIC_PREFIX, TOPIC_SUFFIX

log = structlog.get_logger(__name__)
AGENT_CACHE_SECONDS = 10.0
"""A revoked agent's messages are refused at most this long after the revocation."""


@dataclass
class Telemetry:
    bus: Bus
    gateway: Gateway
    consumer: ReadingsConsumer
    subscriber: Subscriber | None = None
    broker: EmbeddedBroker | None = None
    simulated: list[Agent] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        if self.subscriber is not None:
            await self.subscriber.stop()
        if self.broker is not None:
            await self.broker.stop()
        await self.bus.close()


async def start_telemetry(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    gateway: bool = True,
    consumer: bool = True,
) -> Telemetry:
    attempts = settings.bus_retry_attempts
    bus: Bus = (
        RabbitBus(settings.amqp_url, attempts=attempts)
        if settings.amqp_url
        else InProcessBus(attempts=attempts)
    )
    telemetry = Telemetry(
        bus=bus,
        gateway=Gateway(sessions, bus, agent_cache_seconds=AGENT_CACHE_SECONDS),
        consumer=ReadingsConsumer(sessions),
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


async def simulate_households(
    telemetry: Telemetry,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    cipher: WalletCipher,
    *,
    count: int,
    interval_s: float = 10,
) -> list[uuid.UUID]:
    """N demo households (user sim-<i>@mornet.local, password `simulated`), each with a fresh
    agent of three simulated plugs, run inside this process against the embedded broker."""
    from mornet.accounts import register_account
    from mornet.identity import service as identity

    mqtt_url = (
        f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}"
        if settings.mqtt_url is None
        else settings.mqtt_url
    )
    household_ids = []
    for index in range(1, count + 1):
        email = f"sim-{index}@mornet.local"
        async with unit_of_work(sessions) as session:
            user = await identity.user_by_email(session, email) or await register_account(
                session,
                cipher,
                email=email,
                password="simulated",
                full_name=f"Simulated household {index}",
            )
            homes = await households.list_own_households(session, owner=user)
            home = (
                homes[0].household
                if homes
                else await households.create_household(
                    session,
                    owner=user,
                    name=f"Simulated home {index}",
                    address=f"Demo street {index}",
                    region_code="RU-MOW",
                )
            )
            for detail in homes:
                for old in detail.agents:
                    if old.is_active:
                        await households.revoke_agent(
                            session, actor=user, household_id=home.id, agent_id=old.id
                        )
            provisioned = await households.register_agent(
                session, actor=user, household_id=home.id, name="simulator", mqtt_url=mqtt_url
            )
        config = AgentConfig(
            household_id=home.id,
            agent_id=provisioned.agent.id,
            agent_secret=provisioned.secret,
            mqtt_url=mqtt_url,
            interval_s=interval_s,
            buffer_path=settings.data_dir / "simulated" / f"agent-{index}.db",
            devices=[
                {"id": f"plug-{k}", "kind": "simulated", "seed": index * 10 + k}
                for k in range(1, 4)
            ],
        )
        agent = Agent(config)
        telemetry.simulated.append(agent)
        telemetry._tasks.append(
            asyncio.create_task(agent.run(telemetry._stop), name=f"sim-{index}")
        )
        household_ids.append(home.id)
    log.info("telemetry.simulating", households=count, interval_s=interval_s)
    return household_ids

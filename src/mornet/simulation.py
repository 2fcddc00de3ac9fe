"""Simulated households for `mornet up --simulate N`: demo accounts whose edge agents (the
real agent code, with simulated plugs) run inside the server process. It sits above the agent
and the server's contexts, so neither has to know the other."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.accounts import service as accounts
from mornet.agent.config import AgentConfig
from mornet.agent.runner import Agent
from mornet.chain import service as chain
from mornet.chain.schemas import OperationKind
from mornet.config import Settings
from mornet.crypto import WalletCipher
from mornet.db import unit_of_work
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.tokens import service as tokens

log = structlog.get_logger(__name__)

PREPAID_E = Decimal(20)
"""Prepaid kWh each demo owner starts with (once), so settlement has units to burn."""


@dataclass
class Simulation:
    household_ids: list[uuid.UUID] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, agent: Agent, *, name: str) -> None:
        self.agents.append(agent)
        self._tasks.append(asyncio.create_task(agent.run(self._stop), name=name))

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        self._tasks.clear()


async def simulate_households(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    cipher: WalletCipher,
    *,
    count: int,
    interval_s: float = 10,
    handle: chain.ChainHandle | None = None,
) -> Simulation:
    """N demo households (user sim-<i>@mornet.local, password `simulated`), each with a fresh
    agent of three simulated plugs, run inside this process against the embedded broker. With
    a chain, each owner gets `PREPAID_E` once (an operator adjustment), so each settlement
    shows units burned before any GCC is due."""
    mqtt_url = (
        f"mqtt://{settings.mqtt_host}:{settings.mqtt_port}"
        if settings.mqtt_url is None
        else settings.mqtt_url
    )
    simulation = Simulation()
    for index in range(1, count + 1):
        email = f"sim-{index}@mornet.local"
        async with unit_of_work(sessions) as session:
            user = await identity.user_by_email(session, email) or await accounts.register_account(
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
            if handle is not None:
                await tokens.move(
                    session,
                    handle,
                    kind=OperationKind.MINT,
                    token="E",
                    account=str(user.id),
                    amount=PREPAID_E,
                    idempotency_key=f"simulation:prepaid-E:{user.id}",
                    actor_id=None,
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
        simulation.start(Agent(config), name=f"sim-{index}")
        simulation.household_ids.append(home.id)
    log.info("simulation.running", households=count, interval_s=interval_s)
    return simulation

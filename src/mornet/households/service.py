"""Household rules: ownership, regions, and edge agent provisioning."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor, may_access
from mornet.changes import cached_read, topics_of
from mornet.db import utcnow
from mornet.errors import NotFound, ValidationFailed
from mornet.households import repository
from mornet.households.models import EdgeAgent, Household, HouseholdStatus
from mornet.households.schemas import HouseholdOut
from mornet.identity import service as identity
from mornet.pagination import PageRequest
from mornet.tariffs import service as tariffs
from mornet.wire.telemetry import (
    Ed25519PublicKey,
    private_key,
    public_key_hex,
    secret_digest,
    telemetry_topic,
    verifier,
)


class HouseholdNotFound(NotFound):
    code = "household_not_found"

    def __init__(self) -> None:
        # The same answer whether it does not exist or belongs to someone else.
        super().__init__("no such household")


@dataclass(frozen=True)
class HouseholdDetail:
    household: Household
    agents: Sequence[EdgeAgent]


@dataclass(frozen=True)
class ProvisionedAgent:
    agent: EdgeAgent
    secret: str
    """The only time the plain secret exists on the platform side."""
    mqtt_url: str

    @property
    def topic(self) -> str:
        return telemetry_topic(str(self.agent.household_id))

    def config_toml(self) -> str:
        return agent_config_toml(
            household_id=self.agent.household_id,
            agent_id=self.agent.id,
            secret=self.secret,
            mqtt_url=self.mqtt_url,
        )


@dataclass(frozen=True)
class AdminHouseholdRow:
    household: Household
    owner_email: str
    agent_count: int


def agent_public_key(secret: str) -> str:
    """The public half of the key the agent derives from its secret."""
    return public_key_hex(private_key(secret))


async def agent_password_hash(secret: str) -> str:
    """What the broker login is checked against: a slow hash, never the secret's digest."""
    return await identity.hash_secret(secret_digest(secret).hex())


def agent_config_toml(
    *, household_id: uuid.UUID, agent_id: uuid.UUID, secret: str, mqtt_url: str
) -> str:
    """A ready `agent.toml` for `mornet agent run`; the household adds its devices."""
    return f"""# MorNet edge agent configuration. Keep it private: it holds the agent's secret.
household_id = "{household_id}"
agent_id = "{agent_id}"
agent_secret = "{secret}"
mqtt_url = "{mqtt_url}"
interval_s = 60
buffer_path = "mornet-agent-buffer.db"
# With an mqtts:// broker whose certificate a private CA signed:
# mqtt_ca_file = "broker-ca.pem"

# One [[devices]] block per plug or meter, for example:
# [[devices]]
# id = "kitchen-plug"
# kind = "tapo_p110"
# host = "192.168.1.50"
# username = "your-tapo-account@example.com"
# password = "your-tapo-password"
"""


async def _ensure_region(session: AsyncSession, region_code: str) -> str:
    try:
        return (await tariffs.get_region(session, region_code)).code
    except tariffs.UnknownRegion as exc:
        raise ValidationFailed(
            f"unknown region {region_code!r}: use an ISO 3166-2 code such as RU-MOW",
            code="unknown_region",
        ) from exc


async def create_household(
    session: AsyncSession, *, owner: Actor, name: str, address: str, region_code: str
) -> Household:
    household = Household(
        owner_id=owner.id,
        name=name,
        address=address,
        region_code=await _ensure_region(session, region_code),
        status=HouseholdStatus.ACTIVE,
        created_at=utcnow(),
    )
    session.add(household)
    await session.flush()
    return household


async def get_household(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID
) -> Household:
    """The household if the actor may see it; otherwise the same 404 as a missing one."""
    household = await repository.get_readable(session, actor, household_id)
    if household is None:
        raise HouseholdNotFound()
    return household


async def household_detail(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID
) -> HouseholdDetail:
    household = await get_household(session, actor=actor, household_id=household_id)
    return HouseholdDetail(household, await repository.agents_of(session, [household.id]))


async def list_own_households(session: AsyncSession, *, owner: Actor) -> list[HouseholdDetail]:
    households = await repository.list_for_owner(session, owner.id)
    agents = await repository.agents_of(session, [h.id for h in households])
    return [HouseholdDetail(h, [a for a in agents if a.household_id == h.id]) for h in households]


HOUSEHOLD_TOPICS = topics_of(Household, EdgeAgent)
"""What households and their agents look like changes only when these move."""


async def own_households_shown(session: AsyncSession, *, owner: Actor) -> list[HouseholdOut]:
    """The owner's households as shown, from the process's cache while none changed."""

    async def read() -> list[HouseholdOut]:
        details = await list_own_households(session, owner=owner)
        return [HouseholdOut.of(d.household, d.agents) for d in details]

    return await cached_read(session, "households.own", HOUSEHOLD_TOPICS, owner.id, read)


async def household_shown(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID
) -> HouseholdOut:
    """One household as shown, if the actor may see it, from the process's cache while no
    household or agent changed (the same 404 as `household_detail` otherwise)."""

    async def read() -> tuple[uuid.UUID, HouseholdOut] | None:
        household = await repository.get(session, household_id)
        if household is None:
            return None
        agents = await repository.agents_of(session, [household.id])
        return household.owner_id, HouseholdOut.of(household, agents)

    found = await cached_read(session, "households.one", HOUSEHOLD_TOPICS, household_id, read)
    if found is None or not may_access(actor, found[0]):
        raise HouseholdNotFound()
    return found[1]


async def regions_of_owner(session: AsyncSession, owner_id: uuid.UUID) -> frozenset[str]:
    """The regions where the user has a household (where they may trade prepaid units), from
    the process's cache while no household changed."""

    async def read() -> frozenset[str]:
        return frozenset(h.region_code for h in await repository.list_for_owner(session, owner_id))

    return await cached_read(session, "households.regions", HOUSEHOLD_TOPICS, owner_id, read)


async def household_ids_of_owner(session: AsyncSession, owner_id: uuid.UUID) -> list[uuid.UUID]:
    return [h.id for h in await repository.list_for_owner(session, owner_id)]


async def update_household(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    name: str | None = None,
    address: str | None = None,
    region_code: str | None = None,
) -> HouseholdDetail:
    household = await get_household(session, actor=actor, household_id=household_id)
    # Everything is validated before anything changes: a refused edit leaves no half-change.
    region = await _ensure_region(session, region_code) if region_code is not None else None
    if name is not None:
        household.name = name
    if address is not None:
        household.address = address
    if region is not None:
        household.region_code = region
    await session.flush()
    return HouseholdDetail(household, await repository.agents_of(session, [household.id]))


async def register_agent(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID, name: str, mqtt_url: str
) -> ProvisionedAgent:
    household = await get_household(session, actor=actor, household_id=household_id)
    secret = secrets.token_urlsafe(32)
    agent = EdgeAgent(
        household_id=household.id,
        name=name,
        public_key=agent_public_key(secret),
        password_hash=await agent_password_hash(secret),
        created_at=utcnow(),
    )
    session.add(agent)
    await session.flush()
    return ProvisionedAgent(agent=agent, secret=secret, mqtt_url=mqtt_url)


async def revoke_agent(
    session: AsyncSession, *, actor: Actor, household_id: uuid.UUID, agent_id: uuid.UUID
) -> EdgeAgent:
    household = await get_household(session, actor=actor, household_id=household_id)
    agent = await repository.get_agent(session, agent_id)
    if agent is None or agent.household_id != household.id:
        raise NotFound("no such agent in this household", code="agent_not_found")
    if agent.revoked_at is None:
        agent.revoked_at = utcnow()
        await session.flush()
    return agent


async def _active_agent(session: AsyncSession, agent_id: uuid.UUID) -> EdgeAgent | None:
    """The agent if it is not revoked and its household's owner is not blocked: a blocked
    user's devices are refused like the user."""
    agent = await repository.get_agent(session, agent_id)
    if agent is None or not agent.is_active:
        return None
    household = await repository.get(session, agent.household_id)
    if household is None or not await identity.is_active(session, household.owner_id):
        return None
    return agent


async def authenticate_agent(
    session: AsyncSession, *, agent_id: uuid.UUID, secret: str
) -> EdgeAgent | None:
    """The active agent these credentials belong to, or None (for the MQTT side)."""
    agent = await _active_agent(session, agent_id)
    if agent is None:
        return None
    if not await identity.verify_secret(agent.password_hash, secret_digest(secret).hex()):
        return None
    return agent


@dataclass(frozen=True)
class GatewayAgent:
    id: uuid.UUID
    household_id: uuid.UUID
    verifier: Ed25519PublicKey
    """The agent's public key: checks its messages' signatures."""


async def agent_for_gateway(session: AsyncSession, agent_id: uuid.UUID) -> GatewayAgent | None:
    """An active agent's household and verification key (for the telemetry gateway)."""
    agent = await _active_agent(session, agent_id)
    if agent is None:
        return None
    return GatewayAgent(
        id=agent.id, household_id=agent.household_id, verifier=verifier(agent.public_key)
    )


async def list_all_households(
    session: AsyncSession, *, page: PageRequest = PageRequest()
) -> tuple[list[AdminHouseholdRow], int]:
    """Every household with its owner and active agent count (admin console)."""
    rows, total = await repository.list_page_with_agent_counts(session, page)
    owners = await identity.users_by_id(session, (h.owner_id for h, _ in rows))
    return [
        AdminHouseholdRow(
            household=h,
            owner_email=owners[h.owner_id].email if h.owner_id in owners else "?",
            agent_count=count,
        )
        for h, count in rows
    ], total


async def household_counts(session: AsyncSession) -> tuple[int, int, int]:
    """(all, active, with an active agent) households."""
    return (
        await repository.count(session),
        await repository.count_active(session),
        await repository.with_active_agents(session),
    )


async def count_households(session: AsyncSession) -> int:
    return await repository.count(session)


@dataclass(frozen=True)
class SettledHousehold:
    """What settlement needs of a household."""

    id: uuid.UUID
    owner_id: uuid.UUID
    region_code: str
    created_at: datetime


async def active_households(session: AsyncSession) -> list[SettledHousehold]:
    return [
        SettledHousehold(h.id, h.owner_id, h.region_code, h.created_at)
        for h in await repository.active(session)
    ]

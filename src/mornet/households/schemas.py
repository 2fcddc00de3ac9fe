from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from mornet.fields import TrimmedText
from mornet.households.models import EdgeAgent, Household, HouseholdStatus
from mornet.tariffs.schemas import RegionCode

Name = Annotated[str, TrimmedText(200)]
Address = Annotated[str, TrimmedText(500)]


class HouseholdCreate(BaseModel):
    name: Name
    address: Address
    region: RegionCode


class HouseholdUpdate(BaseModel):
    name: Name | None = None
    address: Address | None = None
    region: RegionCode | None = None


class AgentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    household_id: uuid.UUID
    name: str
    created_at: datetime
    revoked_at: datetime | None


class HouseholdOut(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    region: str
    status: HouseholdStatus
    created_at: datetime
    agents: list[AgentOut]

    @classmethod
    def of(cls, household: Household, agents: Sequence[EdgeAgent]) -> HouseholdOut:
        return cls(
            id=household.id,
            name=household.name,
            address=household.address,
            region=household.region_code,
            status=household.status,
            created_at=household.created_at,
            agents=[AgentOut.model_validate(a) for a in agents],
        )


class AgentCreate(BaseModel):
    name: Name = "edge agent"


class AgentProvisioned(BaseModel):
    """Returned once, at registration: the secret is never shown again."""

    agent_id: uuid.UUID
    household_id: uuid.UUID
    name: str
    agent_secret: str
    mqtt_url: str
    mqtt_topic: str
    config_toml: str


class AdminHouseholdOut(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    region: str
    status: HouseholdStatus
    created_at: datetime
    owner_id: uuid.UUID
    owner_email: str
    agent_count: int

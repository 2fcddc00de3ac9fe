"""REST routes of the households context. Someone else's household is a 404, never a 403,
so ids cannot be probed."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from mornet.dependencies import SessionDep, SettingsDep
from mornet.households import service
from mornet.households.schemas import (
    AdminHouseholdOut,
    AgentCreate,
    AgentOut,
    AgentProvisioned,
    HouseholdCreate,
    HouseholdOut,
    HouseholdUpdate,
)
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.pagination import Page, PageParams, page_of

router = APIRouter(prefix="/api", tags=["households"])


def household_out(detail: service.HouseholdDetail) -> HouseholdOut:
    return HouseholdOut.of(detail.household, detail.agents)


@router.post("/households", status_code=status.HTTP_201_CREATED)
async def create_household(
    body: HouseholdCreate, user: CurrentUser, session: SessionDep
) -> HouseholdOut:
    household = await service.create_household(
        session, owner=user, name=body.name, address=body.address, region_code=body.region
    )
    return household_out(service.HouseholdDetail(household, []))


@router.get("/households")
async def list_households(user: CurrentUser, session: SessionDep) -> list[HouseholdOut]:
    return await service.own_households_shown(session, owner=user)


@router.get("/households/{household_id}")
async def read_household(
    household_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> HouseholdOut:
    return await service.household_shown(session, actor=user, household_id=household_id)


@router.patch("/households/{household_id}")
async def update_household(
    household_id: uuid.UUID, body: HouseholdUpdate, user: CurrentUser, session: SessionDep
) -> HouseholdOut:
    detail = await service.update_household(
        session,
        actor=user,
        household_id=household_id,
        name=body.name,
        address=body.address,
        region_code=body.region,
    )
    return household_out(detail)


@router.post("/households/{household_id}/agents", status_code=status.HTTP_201_CREATED)
async def register_agent(
    household_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    body: AgentCreate | None = None,
) -> AgentProvisioned:
    provisioned = await service.register_agent(
        session,
        actor=user,
        household_id=household_id,
        name=(body or AgentCreate()).name,
        mqtt_url=settings.resolved_public_mqtt_url(),
    )
    return AgentProvisioned(
        agent_id=provisioned.agent.id,
        household_id=provisioned.agent.household_id,
        name=provisioned.agent.name,
        agent_secret=provisioned.secret,
        mqtt_url=provisioned.mqtt_url,
        mqtt_topic=provisioned.topic,
        config_toml=provisioned.config_toml(),
    )


@router.delete("/households/{household_id}/agents/{agent_id}")
async def revoke_agent(
    household_id: uuid.UUID, agent_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> AgentOut:
    agent = await service.revoke_agent(
        session, actor=user, household_id=household_id, agent_id=agent_id
    )
    return AgentOut.model_validate(agent)


@router.get("/admin/households")
async def admin_list_households(
    _: AdminUser,
    session: SessionDep,
    page: PageParams,
) -> Page[AdminHouseholdOut]:
    rows, total = await service.list_all_households(session, page=page)
    return page_of(
        [
            AdminHouseholdOut(
                id=r.household.id,
                name=r.household.name,
                address=r.household.address,
                region=r.household.region_code,
                status=r.household.status,
                created_at=r.household.created_at,
                owner_id=r.household.owner_id,
                owner_email=r.owner_email,
                agent_count=r.agent_count,
            )
            for r in rows
        ],
        total,
        page,
    )

"""GraphQL types, queries and mutations of the households context."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from mornet.graphql import Info, reference_id, validated
from mornet.households import service
from mornet.households.schemas import HouseholdCreate


@strawberry.type(name="EdgeAgent")
class AgentType:
    id: uuid.UUID
    name: str
    created_at: datetime
    revoked_at: datetime | None


@strawberry.federation.type(name="Household", keys=["id"])
class HouseholdType:
    id: uuid.UUID
    name: str
    address: str
    region: str
    status: str
    created_at: datetime
    agents: list[AgentType]

    @classmethod
    def of(cls, detail: service.HouseholdDetail) -> HouseholdType:
        h = detail.household
        return cls(
            id=h.id,
            name=h.name,
            address=h.address,
            region=h.region_code,
            status=str(h.status),
            created_at=h.created_at,
            agents=[
                AgentType(id=a.id, name=a.name, created_at=a.created_at, revoked_at=a.revoked_at)
                for a in detail.agents
            ],
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: object) -> HouseholdType:
        """A reference from another subgraph, under the same ownership rule as `household`."""
        async with info.context.reference_lock:
            user = await info.context.user()
            detail = await service.household_detail(
                info.context.session, actor=user, household_id=reference_id(id)
            )
            return cls.of(detail)


@strawberry.type
class HouseholdsQuery:
    @strawberry.field(description="The caller's own households.")
    async def households(self, info: Info) -> list[HouseholdType]:
        user = await info.context.user()
        details = await service.list_own_households(info.context.session, owner=user)
        return [HouseholdType.of(d) for d in details]

    @strawberry.field(description="One household, if it is the caller's (or the caller is admin).")
    async def household(self, info: Info, id: uuid.UUID) -> HouseholdType:
        user = await info.context.user()
        detail = await service.household_detail(info.context.session, actor=user, household_id=id)
        return HouseholdType.of(detail)


@strawberry.type
class HouseholdsMutation:
    @strawberry.mutation(description="Create a household in a region (ISO 3166-2 code).")
    async def create_household(
        self, info: Info, name: str, address: str, region: str
    ) -> HouseholdType:
        user = await info.context.user()
        body = validated(HouseholdCreate, name=name, address=address, region=region)
        household = await service.create_household(
            info.context.session,
            owner=user,
            name=body.name,
            address=body.address,
            region_code=body.region,
        )
        return HouseholdType.of(service.HouseholdDetail(household, []))

"""GraphQL types, queries and mutations of the households context."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from mornet.graphql import Info, reference_id, validated
from mornet.households import service
from mornet.households.schemas import AgentOut, HouseholdCreate, HouseholdOut


@strawberry.experimental.pydantic.type(model=AgentOut, all_fields=True, name="EdgeAgent")
class AgentType:
    """The REST schema, served as a GraphQL type."""


@strawberry.experimental.pydantic.type(
    model=HouseholdOut, all_fields=True, name="Household", directives=[Key(fields=FieldSet("id"))]
)
class HouseholdType:
    """The REST schema, served as a GraphQL type (and a federation entity keyed by id)."""

    status: str
    agents: list[AgentType]

    @classmethod
    async def resolve_reference(cls, info: Info, id: object) -> HouseholdType:
        """A reference from another subgraph, under the same ownership rule as `household`."""
        async with info.context.reference_lock:
            user = await info.context.user()
            detail = await service.household_detail(
                info.context.session, actor=user, household_id=reference_id(id)
            )
            return household_type(detail)


def household_type(detail: service.HouseholdDetail) -> HouseholdType:
    return HouseholdType.from_pydantic(HouseholdOut.of(detail.household, detail.agents))


@strawberry.type
class HouseholdsQuery:
    @strawberry.field(description="The caller's own households.")
    async def households(self, info: Info) -> list[HouseholdType]:
        user = await info.context.user()
        details = await service.list_own_households(info.context.session, owner=user)
        return [household_type(d) for d in details]

    @strawberry.field(description="One household, if it is the caller's (or the caller is admin).")
    async def household(self, info: Info, id: uuid.UUID) -> HouseholdType:
        user = await info.context.user()
        detail = await service.household_detail(info.context.session, actor=user, household_id=id)
        return household_type(detail)


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
        return household_type(service.HouseholdDetail(household, []))

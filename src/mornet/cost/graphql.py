"""GraphQL queries and mutations of the cost context: the REST shapes, as JSON scalars for the
lines (their segments nest two levels)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from mornet.cost import service
from mornet.cost.endpoints import calculation_out
from mornet.cost.schemas import Calculation, CalculationRequest
from mornet.graphql import Info, validated
from mornet.pagination import MAX_LIMIT, PageRequest


@strawberry.type(name="CostCalculation")
class CalculationType:
    id: uuid.UUID
    household_id: uuid.UUID
    start: datetime = strawberry.field(name="from")
    end: datetime = strawberry.field(name="to")
    currency: str
    plugin: str
    lines: JSON
    cost_e: Decimal
    cost_h: Decimal
    cost_w: Decimal
    cost_total: Decimal

    @classmethod
    def of(cls, calculation: Calculation) -> CalculationType:
        out = calculation_out(calculation)
        return cls(
            id=out.id,
            household_id=out.household_id,
            start=out.start,
            end=out.end,
            currency=out.currency,
            plugin=out.plugin,
            lines=JSON([line.model_dump(mode="json", by_alias=True) for line in out.lines]),
            cost_e=out.cost_e,
            cost_h=out.cost_h,
            cost_w=out.cost_w,
            cost_total=out.cost_total,
        )


@strawberry.type
class CostQuery:
    @strawberry.field(description="A household's cost calculations, newest period first.")
    async def cost_calculations(self, info: Info, household_id: uuid.UUID) -> list[CalculationType]:
        user = await info.context.user()
        found, _ = await service.calculations_of(
            info.context.session,
            actor=user,
            household_id=household_id,
            start=None,
            end=None,
            page=PageRequest(limit=MAX_LIMIT),
        )
        return [CalculationType.of(c) for c in found]


@strawberry.type
class CostMutation:
    @strawberry.mutation(
        description="Price a household's consumption over [from, to) and keep the calculation."
    )
    async def calculate_cost(
        self,
        info: Info,
        household_id: uuid.UUID,
        start: Annotated[datetime, strawberry.argument(name="from")],
        end: Annotated[datetime, strawberry.argument(name="to")],
    ) -> CalculationType:
        user = await info.context.user()
        body = validated(
            CalculationRequest, household_id=household_id, **{"from": start, "to": end}
        )
        calculation = await service.calculate(
            info.context.session,
            actor=user,
            household_id=body.household_id,
            start=body.start,
            end=body.end,
        )
        return CalculationType.of(calculation)

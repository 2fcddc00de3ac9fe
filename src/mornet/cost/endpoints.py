"""REST routes of the cost context."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status

from mornet.cost import service
from mornet.cost.schemas import Calculation, CalculationOut, CalculationRequest
from mornet.dependencies import SessionDep
from mornet.errors import answers
from mornet.fields import FromQuery, ToQuery
from mornet.identity.auth import CurrentUser
from mornet.pagination import Page, PageParams, page_of

router = APIRouter(prefix="/api", tags=["cost"])


def calculation_out(calculation: Calculation) -> CalculationOut:
    fields: dict[str, Any] = {
        "id": calculation.id,
        "household_id": calculation.household_id,
        "from": calculation.period_start,
        "to": calculation.period_end,
        "plugin": calculation.plugin,
        "lines": calculation.lines,
        "cost_e": calculation.cost_e,
        "cost_h": calculation.cost_h,
        "cost_w": calculation.cost_w,
        "cost_total": calculation.cost_total,
        "created_at": calculation.created_at,
    }
    return CalculationOut.model_validate(fields)


@router.post("/cost/calculate", status_code=status.HTTP_201_CREATED, responses=answers(404))
async def calculate(
    body: CalculationRequest, user: CurrentUser, session: SessionDep
) -> CalculationOut:
    """Price a household's consumption over a period at the tariffs in force (owner or admin).
    A period with no use has no lines; one that is reversed or longer than a year is a 422."""
    calculation = await service.calculate(
        session, actor=user, household_id=body.household_id, start=body.start, end=body.end
    )
    return calculation_out(calculation)


@router.get("/cost/calculations", responses=answers(404))
async def list_calculations(
    household_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    page: PageParams,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Page[CalculationOut]:
    found, total = await service.calculations_of(
        session, actor=user, household_id=household_id, start=start, end=end, page=page
    )
    return page_of([calculation_out(c) for c in found], total, page)


@router.get("/cost/calculations/{calculation_id}", responses=answers(404))
async def read_calculation(
    calculation_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> CalculationOut:
    return calculation_out(
        await service.get_calculation(session, actor=user, calculation_id=calculation_id)
    )

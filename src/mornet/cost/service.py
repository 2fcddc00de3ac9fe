"""Cost rules: a household's metered use over a period, priced by its sector's plugin at the
tariffs of its region, and kept as a calculation."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.cost import repository
from mornet.cost.models import CostCalculation
from mornet.cost.plugins import Consumption, CostPlugin, plugin_for
from mornet.cost.rating import KOPECK, Line, PricePeriod, Use, total
from mornet.db import utcnow
from mornet.errors import NotFound, ValidationFailed
from mornet.households import service as households
from mornet.pagination import PageRequest
from mornet.resources import Resource
from mornet.tariffs import service as tariffs
from mornet.telemetry import service as telemetry

LONGEST = timedelta(days=366)
HOUR = timedelta(hours=1)


class CalculationNotFound(NotFound):
    code = "calculation_not_found"

    def __init__(self) -> None:
        super().__init__("no such calculation")


def _check_period(start: datetime, end: datetime) -> None:
    if start >= end:
        raise ValidationFailed("`from` must be before `to`", code="bad_period")
    if end - start > LONGEST:
        raise ValidationFailed("a period is at most a year (366 days)", code="bad_period")


async def _timeline(session: AsyncSession, region: str, resource: Resource) -> list[PricePeriod]:
    history = await tariffs.tariff_history(session, region, resource)
    return sorted(
        (PricePeriod(start=q.valid_from, price=q.price, tariff_id=q.id) for q in history),
        key=lambda p: p.start,
    )


def _line_json(line: Line) -> dict[str, Any]:
    return {
        "resource": line.resource.value,
        "quantity": str(line.quantity),
        "unit": line.unit,
        "cost": str(line.cost),
        "segments": [
            {
                "from": s.start.isoformat(),
                "to": s.end.isoformat(),
                "quantity": str(s.quantity),
                "price": str(s.price),
                "tariff_id": str(s.tariff_id),
            }
            for s in line.segments
        ],
    }


async def calculate(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> CostCalculation:
    """Price the household's hourly use in [start, end) (the hours that start in it) and keep
    the calculation. A period without use is a calculation with no lines."""
    _check_period(start, end)
    plugin, lines = await _price(session, actor, household_id, start, end)
    by_resource = {line.resource: line.cost for line in lines}
    nothing = Decimal(0).quantize(KOPECK)
    calculation = CostCalculation(
        household_id=household_id,
        period_start=start,
        period_end=end,
        plugin=plugin.name,
        cost_e=by_resource.get(Resource.ELECTRICITY, nothing),
        cost_h=by_resource.get(Resource.HEAT, nothing),
        cost_w=by_resource.get(Resource.WATER, nothing),
        cost_total=total(lines).quantize(KOPECK),
        lines=[_line_json(line) for line in lines],
        created_by=actor.id,
    )
    session.add(calculation)
    await session.flush()
    return calculation


def cost_beyond(line: dict[str, Any], covered: Decimal) -> Decimal:
    """What a stored line's units beyond the first `covered` cost, each at its segment's
    tariff (the covered units are the earliest use), rounded half-up once to the kopeck:
    the part of a line that prepaid units did not pay for."""
    exact = Decimal(0)
    left = covered
    for segment in line["segments"]:
        quantity = Decimal(segment["quantity"])
        used = min(quantity, left)
        left -= used
        exact += (quantity - used) * Decimal(segment["price"])
    return exact.quantize(KOPECK, rounding=ROUND_HALF_UP)


async def month_so_far(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    now: datetime | None = None,
) -> tuple[datetime, list[Line]]:
    """This month's cost so far (the month of the household's region's time zone), priced
    but not kept: for the household's page."""
    household = await households.get_household(session, actor=actor, household_id=household_id)
    zone = ZoneInfo((await tariffs.get_region(session, household.region_code)).timezone)
    now = now or utcnow()
    start = now.astimezone(zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    _, lines = await _price(session, actor, household_id, start.astimezone(UTC), now + HOUR)
    return start, lines


async def _price(
    session: AsyncSession,
    actor: Actor,
    household_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> tuple[CostPlugin, list[Line]]:
    household = await households.get_household(session, actor=actor, household_id=household_id)
    points = await telemetry.household_consumption(
        session,
        actor=actor,
        household_id=household_id,
        start=start,
        end=end,
        resource=None,
        granularity="hour",
    )
    uses: dict[Resource, list[Use]] = defaultdict(list)
    for point in points:
        if start <= point.start < end:
            uses[point.resource].append(Use(point.start, point.start + HOUR, point.quantity))
    timelines = {
        resource: await _timeline(session, household.region_code, resource) for resource in uses
    }
    plugin = plugin_for(None)  # households have no sector yet: all are residential
    lines = plugin.price(
        Consumption(
            household_id=household.id,
            region=household.region_code,
            start=start,
            end=end,
            uses=uses,
            timelines=timelines,
        )
    )
    return plugin, lines


async def get_calculation(
    session: AsyncSession, *, actor: Actor, calculation_id: uuid.UUID
) -> CostCalculation:
    calculation = await repository.get(session, calculation_id)
    if calculation is None:
        raise CalculationNotFound()
    try:
        await households.get_household(session, actor=actor, household_id=calculation.household_id)
    except households.HouseholdNotFound:
        raise CalculationNotFound() from None
    return calculation


async def calculations_of(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    page: PageRequest,
) -> tuple[Sequence[CostCalculation], int]:
    await households.get_household(session, actor=actor, household_id=household_id)
    return await repository.page_of_household(
        session, household_id, start=start, end=end, page=page
    )

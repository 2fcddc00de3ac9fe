"""Cost rules: a household's metered use over a period, priced by its sector's plugin at the
tariffs of its region, and kept as a calculation."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.cost import repository
from mornet.cost.models import CostCalculation
from mornet.cost.plugins import Consumption, CostPlugin, plugin_for
from mornet.cost.rating import KOPECK, Line, PricePeriod, Use, total
from mornet.cost.rating import NoTariffForUse as NoTariffForUse  # part of this API
from mornet.cost.schemas import Calculation as Calculation  # part of this API
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
) -> Calculation:
    """Price the household's hourly use in [start, end) (the hours that start in it) and keep
    the calculation. A period without use is a calculation with no lines."""
    household = await households.get_household(session, actor=actor, household_id=household_id)
    request = RatingRequest(household.id, household.region_code, start, end)
    [calculation] = await calculate_many(session, [request], created_by=actor.id)
    return calculation


@dataclass(frozen=True)
class RatingRequest:
    household_id: uuid.UUID
    region: str
    start: datetime
    end: datetime


async def calculate_many(
    session: AsyncSession, requests: Sequence[RatingRequest], *, created_by: uuid.UUID
) -> list[Calculation]:
    """The platform's own rating (settlement), for many household periods at once, kept: one
    query for the use of the households that share a period, one tariff timeline per region
    and resource, one insert (rows, not ORM objects: building those cost half the rating).
    In the order asked."""
    plugin = plugin_for(None)  # households have no sector yet: all are residential
    calculations = [
        _calculation(r.household_id, r.start, r.end, plugin, lines, created_by=created_by)
        for r, lines in zip(requests, await _price_many(session, requests, plugin), strict=True)
    ]
    if calculations:
        await session.execute(
            insert(CostCalculation), [_row(calculation) for calculation in calculations]
        )
    return calculations


async def _price_many(
    session: AsyncSession, requests: Sequence[RatingRequest], plugin: CostPlugin
) -> list[list[Line]]:
    """Each request's priced lines (not kept)."""
    timelines: dict[tuple[str, Resource], list[PricePeriod]] = {}
    by_period: dict[tuple[datetime, datetime], list[RatingRequest]] = defaultdict(list)
    for request in requests:
        _check_period(request.start, request.end)
        by_period[(request.start, request.end)].append(request)
    priced: dict[tuple[uuid.UUID, datetime], list[Line]] = {}
    for (start, end), group in by_period.items():
        for region in {r.region for r in group}:
            for resource in Resource:
                if (region, resource) not in timelines:
                    timelines[(region, resource)] = await _timeline(session, region, resource)
        # A period that no tariff change cuts is priced from each resource's total alone
        # (summed by the database); else hour by hour, so each hour is split where it changes.
        changes_inside = any(
            start < period.start < end
            for (region, _), timeline in timelines.items()
            if region in {r.region for r in group}
            for period in timeline
        )
        fetch = telemetry.billed_use_of if changes_inside else telemetry.billed_totals_of
        use = await fetch(session, [r.household_id for r in group], start=start, end=end)
        for request in group:
            uses = _uses(use[request.household_id], start, end)
            priced[(request.household_id, start)] = plugin.price(
                Consumption(
                    household_id=request.household_id,
                    region=request.region,
                    start=start,
                    end=end,
                    uses=uses,
                    timelines={r: timelines[(request.region, r)] for r in uses},
                )
            )
    return [priced[(r.household_id, r.start)] for r in requests]


def _uses(
    points: Sequence[telemetry.Point], start: datetime, end: datetime
) -> dict[Resource, list[Use]]:
    uses: dict[Resource, list[Use]] = defaultdict(list)
    for point in points:
        if start <= point.start < end:
            until = point.end if isinstance(point, telemetry.Span) else point.start + HOUR
            uses[point.resource].append(Use(point.start, until, point.quantity))
    return uses


def _calculation(
    household_id: uuid.UUID,
    start: datetime,
    end: datetime,
    plugin: CostPlugin,
    lines: list[Line],
    *,
    created_by: uuid.UUID,
) -> Calculation:
    by_resource = {line.resource: line.cost for line in lines}
    nothing = Decimal(0).quantize(KOPECK)
    return Calculation(
        id=uuid.uuid4(),
        household_id=household_id,
        period_start=start,
        period_end=end,
        plugin=plugin.name,
        cost_e=by_resource.get(Resource.ELECTRICITY, nothing),
        cost_h=by_resource.get(Resource.HEAT, nothing),
        cost_w=by_resource.get(Resource.WATER, nothing),
        cost_total=total(lines).quantize(KOPECK),
        lines=[_line_json(line) for line in lines],
        created_by=created_by,
        created_at=utcnow(),
    )


_COLUMNS = tuple(field.name for field in fields(Calculation))


def _row(calculation: Calculation) -> dict[str, Any]:
    return {name: getattr(calculation, name) for name in _COLUMNS}


def _record(row: CostCalculation) -> Calculation:
    return Calculation(**{name: getattr(row, name) for name in _COLUMNS})


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


def prorated(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """`amount * part / whole` rounded half-up once to the kopeck: the share of a priced
    quantity that `part` of it costs."""
    return (amount * part / whole).quantize(KOPECK, rounding=ROUND_HALF_UP)


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
    request = RatingRequest(household.id, household.region_code, start.astimezone(UTC), now + HOUR)
    [lines] = await _price_many(session, [request], plugin_for(None))
    return start, lines


async def get_calculation(
    session: AsyncSession, *, actor: Actor, calculation_id: uuid.UUID
) -> Calculation:
    calculation = await repository.get(session, calculation_id)
    if calculation is None:
        raise CalculationNotFound()
    try:
        await households.get_household(session, actor=actor, household_id=calculation.household_id)
    except households.HouseholdNotFound:
        raise CalculationNotFound() from None
    return _record(calculation)


async def calculations_of(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
    page: PageRequest,
) -> tuple[list[Calculation], int]:
    await households.get_household(session, actor=actor, household_id=household_id)
    found, count = await repository.page_of_household(
        session, household_id, start=start, end=end, page=page
    )
    return [_record(row) for row in found], count

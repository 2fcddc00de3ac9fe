"""REST routes of the telemetry context: a household's readings and use, meter entries,
and the operators' view of dead letters."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from mornet.dependencies import SessionDep
from mornet.fields import FromQuery, ToQuery
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.resources import Resource
from mornet.telemetry import service
from mornet.telemetry.schemas import (
    ConsumptionPoint,
    DeadLetterOut,
    MeterReadingIn,
    ReadingOut,
)

router = APIRouter(prefix="/api", tags=["telemetry"])


@router.get("/households/{household_id}/readings")
async def readings(
    household_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    start: FromQuery = None,
    end: ToQuery = None,
    device_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[ReadingOut]:
    rows = await service.household_readings(
        session,
        actor=user,
        household_id=household_id,
        start=start,
        end=end,
        device_id=device_id,
        limit=limit,
    )
    return [
        ReadingOut(
            device_id=r.device_id,
            seq=r.seq,
            resource=Resource(r.resource),
            ts=r.ts,
            counter=r.counter,
            power_w=r.power_w,
            voltage_v=r.voltage_v,
            current_a=r.current_a,
        )
        for r in rows
    ]


@router.get("/households/{household_id}/consumption")
async def consumption(
    household_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    start: FromQuery = None,
    end: ToQuery = None,
    resource: Resource | None = None,
    granularity: Literal["hour", "day"] = "hour",
) -> list[ConsumptionPoint]:
    points = await service.household_consumption(
        session,
        actor=user,
        household_id=household_id,
        start=start,
        end=end,
        resource=resource,
        granularity=granularity,
    )
    return [
        ConsumptionPoint(
            start=p.start, resource=p.resource, quantity=p.quantity, unit=p.resource.unit
        )
        for p in points
    ]


@router.post("/households/{household_id}/meter-readings", status_code=status.HTTP_201_CREATED)
async def meter_reading(
    household_id: uuid.UUID, body: MeterReadingIn, user: CurrentUser, session: SessionDep
) -> dict[str, int]:
    stored = await service.record_meter_reading(
        session,
        actor=user,
        household_id=household_id,
        resource=Resource(body.resource),
        value=body.value,
        ts=body.ts,
    )
    return {"stored": stored.new, "duplicate": stored.duplicate}


@router.get("/admin/telemetry/dead-letters")
async def dead_letters(
    _: AdminUser, session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterOut]:
    return [
        DeadLetterOut.model_validate(d) for d in await service.dead_letters(session, limit=limit)
    ]

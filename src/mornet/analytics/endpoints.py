"""REST routes of analytics: the household dashboard, the operators' summary and series,
and the event log."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from mornet.analytics import service
from mornet.analytics.schemas import DashboardOut, EventOut, SeriesOut, SummaryOut
from mornet.chain.dependencies import ChainDep
from mornet.dependencies import SessionDep, SettingsDep
from mornet.errors import answers
from mornet.fields import FromQuery, Moment, ToQuery
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.pagination import Page, PageParams, page_of
from mornet.treasury import service as treasury

router = APIRouter(prefix="/api", tags=["analytics"])


@router.get("/dashboard", responses=answers(503))
async def dashboard(user: CurrentUser, session: SessionDep, handle: ChainDep) -> DashboardOut:
    """Your households at a glance (power now, use today and this month, this month's cost so
    far), your wallet (available and held), how many days your prepaid E, H and W last at
    your trailing 7-day average use, and your last moves."""
    return await service.dashboard(session, handle, actor=user)


@router.get("/admin/analytics/summary", responses=answers(503))
async def summary(
    _: AdminUser, session: SessionDep, handle: ChainDep, settings: SettingsDep
) -> SummaryOut:
    """Users, households, use today and over 30 days, GCC in circulation by where it is (read
    from the chain), deposits, withdrawals and trades."""
    return await service.summary(
        session,
        handle,
        treasury=await treasury.revenue_address(session, handle, settings.treasury_address),
    )


@router.get("/admin/analytics/series", responses=answers(422))
async def series(
    _: AdminUser,
    session: SessionDep,
    metric: Annotated[str, Query(description=f"One of {', '.join(service.METRICS)}")],
    start: Annotated[Moment, Query(alias="from", description="ISO 8601 with zone")],
    end: Annotated[Moment, Query(alias="to", description="ISO 8601 with zone")],
    granularity: Literal["hour", "day"] = "hour",
) -> SeriesOut:
    """A metric per hour (at most 31 days) or per UTC day (at most 366 days), every bucket
    present: use per resource, deposits and paid withdrawals (RUB), GCC traded,
    registrations, and the GCC supply (its level at each bucket's end)."""
    return await service.series(
        session, metric=metric, granularity=granularity, start=start, end=end
    )


@router.get("/admin/events", responses=answers(422))
async def events(
    _: AdminUser,
    session: SessionDep,
    page: PageParams,
    kind: Annotated[
        str | None, Query(max_length=100, description="A topic, or its prefix (e.g. `bank`)")
    ] = None,
    actor: Annotated[uuid.UUID | None, Query(description="Who did it (a user id)")] = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Page[EventOut]:
    """The event log, newest first: every operator action (who did it) and the platform's
    notable events, each with the object it is about. Nothing removes an entry."""
    found, total = await service.events(
        session, kind=kind, actor_id=actor, start=start, end=end, page=page
    )
    return page_of(found, total, page)

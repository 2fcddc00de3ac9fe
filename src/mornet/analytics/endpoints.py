"""REST routes of analytics: the household dashboard."""

from __future__ import annotations

from fastapi import APIRouter

from mornet.analytics import service
from mornet.analytics.schemas import DashboardOut, SummaryOut
from mornet.chain.dependencies import ChainDep
from mornet.dependencies import SessionDep, SettingsDep
from mornet.errors import answers
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.treasury import service as treasury

router = APIRouter(tags=["analytics"])


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

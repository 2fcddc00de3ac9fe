"""Analytics pages: the household dashboard and the operators' summary."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mornet.analytics import service
from mornet.chain.dependencies import ChainDep
from mornet.dependencies import SessionDep, SettingsDep
from mornet.errors import MornetError
from mornet.identity.auth import PageAdmin, PageUser
from mornet.treasury import service as treasury
from mornet.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def dashboard(
    request: Request, user: PageUser, session: SessionDep, chain: ChainDep
) -> Response:
    try:
        board, error = await service.dashboard(session, chain, actor=user), None
    except MornetError as exc:  # the chain is not connected: say so, show nothing stale
        board, error = None, exc.message
    return render(request, "analytics/dashboard.html", {"board": board, "error": error}, user=user)


@router.get("/admin/analytics")
async def summary(
    request: Request, admin: PageAdmin, session: SessionDep, chain: ChainDep, settings: SettingsDep
) -> Response:
    try:
        figures = await service.summary(
            session,
            chain,
            treasury=await treasury.revenue_address(session, chain, settings.treasury_address),
        )
        error = None
    except MornetError as exc:
        figures, error = None, exc.message
    return render(
        request, "analytics/summary.html", {"figures": figures, "error": error}, user=admin
    )

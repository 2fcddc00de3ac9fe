"""Analytics pages: the household dashboard, the operators' dashboard (the summary as cards,
the series as charts over a chosen range, refreshing itself) and the event log."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mornet.analytics import service
from mornet.analytics.charts import chart
from mornet.chain.dependencies import ChainDep
from mornet.db import utcnow
from mornet.dependencies import SessionDep, SettingsDep
from mornet.errors import MornetError
from mornet.identity.auth import PageAdmin, PageUser
from mornet.pagination import PageRequest
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


RANGES = {
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "hour"),
    "30d": (timedelta(days=30), "day"),
    "90d": (timedelta(days=90), "day"),
}
CHARTS = (
    ("Consumption, kWh", (("Electricity", "consumption_e"), ("Heat", "consumption_h"))),
    ("Water, m3", (("Water", "consumption_w"),)),
    ("Deposits vs withdrawals, RUB", (("Deposits", "deposits"), ("Withdrawals", "withdrawals"))),
    ("GCC supply vs roubles held", (("GCC supply", "gcc_supply"), ("RUB held", "reserves"))),
)


@router.get("/admin/analytics")
async def summary(
    request: Request,
    admin: PageAdmin,
    session: SessionDep,
    chain: ChainDep,
    settings: SettingsDep,
    range: str = "24h",
) -> Response:
    span, granularity = RANGES.get(range, RANGES["24h"])
    try:
        figures = await service.summary(
            session,
            chain,
            treasury=await treasury.revenue_address(session, chain, settings.treasury_address),
        )
        error = None
    except MornetError as exc:
        figures, error = None, exc.message
    end = utcnow()
    drawn = []
    for title, metrics in CHARTS:
        labelled = [
            (
                label,
                await service.series(
                    session, metric=metric, granularity=granularity, start=end - span, end=end
                ),
            )
            for label, metric in metrics
        ]
        drawn.append(chart(title, labelled))
    return render(
        request,
        "analytics/summary.html",
        {
            "figures": figures,
            "error": error,
            "charts": drawn,
            "range": range if range in RANGES else "24h",
            "ranges": list(RANGES),
        },
        user=admin,
    )


@router.get("/admin/events")
async def event_log(
    request: Request,
    admin: PageAdmin,
    session: SessionDep,
    kind: str = "",
    actor: str = "",
    page: int = 0,
) -> Response:
    error = None
    actor_id = None
    if actor.strip():
        try:
            actor_id = uuid.UUID(actor.strip())
        except ValueError:
            error = f"{actor!r} is not a user id"
    events, total = await service.events(
        session,
        kind=kind.strip() or None,
        actor_id=actor_id,
        start=None,
        end=None,
        page=PageRequest(offset=max(page, 0) * PAGE_SIZE, limit=PAGE_SIZE),
    )
    return render(
        request,
        "analytics/events.html",
        {
            "events": events,
            "total": total,
            "kind": kind,
            "actor": actor,
            "page": max(page, 0),
            "pages": (total + PAGE_SIZE - 1) // PAGE_SIZE,
            "error": error,
        },
        user=admin,
    )


PAGE_SIZE = 50

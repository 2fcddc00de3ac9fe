"""Pages of the tokens context: the household page's "Settlements" panel and the operators'
settlement runs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.dependencies import SessionDep
from mornet.identity.auth import PageAdmin
from mornet.pagination import PageRequest
from mornet.tokens import service
from mornet.web.pages import render, templates

router = APIRouter(include_in_schema=False)


async def settlements_panel(
    request: Request, session: AsyncSession, user: Actor, household_id: uuid.UUID
) -> Markup:
    """The household's last settled periods: used, burned, paid, owed, GCM, status."""
    found, _ = await service.settlements_of(
        session, actor=user, household_id=household_id, page=PageRequest(limit=10)
    )
    statuses = await service.settlement_statuses(session, found)
    carried = await service.adjustments_in(session, found)
    rows = [(s, status, carried[s.id]) for s, status in zip(found, statuses, strict=True)]
    html = templates.get_template("tokens/_settlements.html").render(rows=rows)
    return Markup(html)  # noqa: S704  # rendered by the autoescaping template environment


@router.get("/admin/settlements")
async def settlement_runs(request: Request, admin: PageAdmin, session: SessionDep) -> Response:
    """The last settlement runs: what each settled and paid, what it left owed, failures."""
    runs, _ = await service.settlement_runs(session, PageRequest(limit=50))
    statuses = await service.settlement_statuses(session, runs)
    failures = await service.failed_operations(session, runs)
    return render(
        request,
        "tokens/admin_runs.html",
        {"runs": list(zip(runs, statuses, failures, strict=True))},
        user=admin,
    )

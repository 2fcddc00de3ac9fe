"""Pages of the tokens context: the household page's "Settlements" panel."""

from __future__ import annotations

import uuid

from fastapi import Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.pagination import PageRequest
from mornet.tokens import service
from mornet.web.pages import templates


async def settlements_panel(
    request: Request, session: AsyncSession, user: Actor, household_id: uuid.UUID
) -> Markup:
    """The household's last settled periods: used, burned, paid, owed, GCM, status."""
    found, _ = await service.settlements_of(
        session, actor=user, household_id=household_id, page=PageRequest(limit=10)
    )
    rows = list(zip(found, await service.settlement_statuses(session, found), strict=True))
    html = templates.get_template("tokens/_settlements.html").render(rows=rows)
    return Markup(html)  # noqa: S704  # rendered by the autoescaping template environment

"""Pages of the cost context: the household page's "This month" panel."""

from __future__ import annotations

import uuid

from fastapi import Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.cost import service
from mornet.cost.rating import NoTariffForUse, total
from mornet.web.pages import templates


async def month_panel(
    request: Request, session: AsyncSession, user: Actor, household_id: uuid.UUID
) -> Markup:
    """This month's cost so far per resource, with the tariffs that priced it."""
    try:
        start, lines = await service.month_so_far(session, actor=user, household_id=household_id)
        error = None
    except NoTariffForUse as exc:
        start, lines, error = None, [], exc.message
    html = templates.get_template("cost/_month.html").render(
        start=start, lines=lines, total=total(lines), error=error
    )
    return Markup(html)  # noqa: S704  # rendered by the autoescaping template environment

"""Page pieces of the telemetry context: today's use as an inline SVG bar chart (no script,
works on any phone) and the operators' dead-letter list."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.dependencies import SessionDep
from mornet.errors import NotFound
from mornet.identity.auth import PageAdmin, PageUser
from mornet.resources import Resource
from mornet.telemetry import service
from mornet.telemetry.schemas import MeterReadingIn
from mornet.web.pages import (
    CsrfChecked,
    csrf_token,
    form_decimal,
    redirect,
    render,
    submit_form,
    templates,
)

router = APIRouter(include_in_schema=False)
WIDTH, HEIGHT, PAD = 720, 180, 24


def today_chart(today: service.Today) -> Markup:
    """Electricity per hour of today (kWh)."""
    hours = {
        p.start.astimezone(today.start.tzinfo).hour: p.quantity
        for p in today.hourly
        if p.resource == Resource.ELECTRICITY
    }
    peak = max(hours.values(), default=Decimal(0)) or Decimal(1)
    bar = (WIDTH - 2 * PAD) / 24
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Electricity used per hour today">'
    ]
    for hour in range(24):
        value = hours.get(hour, Decimal(0))
        height = float(value / peak) * (HEIGHT - 2 * PAD)
        x = PAD + hour * bar
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{bar - 2:.1f}" '
            f'height="{height:.1f}"><title>{hour:02d}:00 — {escape(str(value))} kWh</title></rect>'
        )
        if hour % 3 == 0:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}">{hour:02d}</text>')
    parts.append(f'<text x="{PAD}" y="14">peak {escape(str(peak.normalize()))} kWh/h</text></svg>')
    return Markup("".join(parts))  # noqa: S704  # built from numbers; text is escaped


@router.get("/admin/telemetry")
async def admin_dead_letters(request: Request, admin: PageAdmin, session: SessionDep) -> Response:
    letters = await service.dead_letters(session, limit=200)
    return render(request, "telemetry/dead_letters.html", {"letters": letters}, user=admin)


async def today_panel(
    request: Request, session: AsyncSession, user: Actor, household_id: uuid.UUID
) -> Markup:
    """The household page's "Today": power now, today's totals and chart, the meter form."""
    today = await service.today(session, actor=user, household_id=household_id)
    html = templates.get_template("telemetry/_today.html").render(
        today=today,
        chart=today_chart(today),
        household_id=household_id,
        csrf_token=csrf_token(request),
    )
    return Markup(html)  # noqa: S704  # rendered by the autoescaping template environment


@router.post("/households/{household_id}/meter-readings", dependencies=[CsrfChecked])
async def meter_reading(
    request: Request,
    household_id: uuid.UUID,
    user: PageUser,
    session: SessionDep,
    resource: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
) -> Response:
    """A heat or water meter index typed in by the household."""

    async def record() -> Response:
        body = MeterReadingIn(resource=resource, value=form_decimal("value", value))
        await service.record_meter_reading(
            session,
            actor=user,
            household_id=household_id,
            resource=Resource(body.resource),
            value=body.value,
            ts=None,
        )
        return redirect(f"/households/{household_id}")

    async def refused(message: str, status: int) -> Response:
        return render(
            request,
            "telemetry/meter_reading.html",
            {
                "error": message,
                "household_id": household_id,
                "form": {"resource": resource, "value": value},
            },
            user=user,
            status_code=status,
        )

    # Someone else's (or no) household: the 404 page, as everywhere.
    return await submit_form(session, record, refused, raise_through=(NotFound,))

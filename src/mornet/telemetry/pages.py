"""Page pieces of the telemetry context: today's use as an inline SVG bar chart (no script,
works on any phone) and the operators' dead-letter list."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from mornet.dependencies import SessionDep
from mornet.resources import Resource
from mornet.telemetry import service
from mornet.web.pages import PageAdmin, render

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

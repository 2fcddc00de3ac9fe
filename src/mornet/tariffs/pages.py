"""Pages of the oracle: published prices by region, and the admin form to add one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.access import Actor
from mornet.dependencies import SessionDep
from mornet.errors import ValidationFailed
from mornet.identity.auth import OptionalPageUser, PageAdmin
from mornet.tariffs import service
from mornet.tariffs.schemas import TariffCreate
from mornet.web.pages import (
    CsrfChecked,
    form_decimal,
    redirect,
    render,
    submit_form,
)

router = APIRouter(include_in_schema=False)


async def _overview(session: SessionDep) -> list[dict[str, object]]:
    overview = []
    for region in await service.list_regions(session):
        _, current = await service.tariffs_in_force(session, region.code)
        overview.append({"region": region, "current": current})
    return overview


@router.get("/tariffs")
async def tariffs(request: Request, user: OptionalPageUser, session: SessionDep) -> Response:
    return render(request, "tariffs/list.html", {"overview": await _overview(session)}, user=user)


async def _admin_page(
    request: Request,
    session: SessionDep,
    admin: Actor,
    *,
    region: str | None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    regions = await service.list_regions(session)
    selected = region or (regions[0].code if regions else None)
    history = await service.tariff_history(session, selected) if selected else []
    selected_region = next((r for r in regions if r.code == selected), None)
    return render(
        request,
        "tariffs/admin.html",
        {
            "regions": regions,
            "selected": selected_region,
            "history": history,
            "form": form or {},
            "error": error,
        },
        user=admin,
        status_code=status_code,
    )


@router.get("/admin/tariffs")
async def admin_tariffs(
    request: Request, admin: PageAdmin, session: SessionDep, region: str | None = None
) -> Response:
    return await _admin_page(request, session, admin, region=region)


def _parse_local_time(value: str, zone: str) -> datetime | None:
    """The form's `datetime-local` has no zone: it is the region's local time."""
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(zone))
    except ValueError as exc:
        raise ValidationFailed(f"valid from: {value!r} is not a date and time") from exc


@router.post("/admin/tariffs", dependencies=[CsrfChecked])
async def admin_add_tariff(
    request: Request,
    admin: PageAdmin,
    session: SessionDep,
    region: Annotated[str, Form()] = "",
    resource: Annotated[str, Form()] = "",
    price: Annotated[str, Form()] = "",
    valid_from: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    async def add() -> Response:
        found = await service.get_region(session, region)
        body = TariffCreate(
            region=found.code,
            resource=resource,
            price=form_decimal("price", price),
            valid_from=_parse_local_time(valid_from, found.timezone),
            note=note,
        )
        await service.add_tariff(session, body, actor_id=admin.id)
        return redirect(f"/admin/tariffs?region={region}")

    async def refused(message: str, status: int) -> Response:
        form = {"resource": resource, "price": price, "valid_from": valid_from, "note": note}
        return await _admin_page(
            request, session, admin, region=region, form=form, error=message, status_code=status
        )

    return await submit_form(session, add, refused)

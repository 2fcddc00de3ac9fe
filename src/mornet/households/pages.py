"""Pages of the households context: the owner's homes, agent provisioning, admin list."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from mornet.dependencies import RuntimeDep, SessionDep
from mornet.households import service
from mornet.households.schemas import AgentCreate, HouseholdCreate, HouseholdUpdate
from mornet.identity.models import User
from mornet.resources import Resource
from mornet.tariffs import service as tariffs
from mornet.telemetry import service as telemetry
from mornet.telemetry.pages import today_chart
from mornet.telemetry.schemas import MeterReadingIn
from mornet.web.pages import (
    CsrfChecked,
    FormFailure,
    PageAdmin,
    PageUser,
    failure,
    form_decimal,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)


async def _list_page(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    households = await service.list_own_households(session, owner=user)
    regions = await tariffs.list_regions(session)
    return render(
        request,
        "households/list.html",
        {"households": households, "regions": regions, "form": form or {}, "error": error},
        user=user,
        status_code=status_code,
    )


@router.get("/households")
async def households(request: Request, user: PageUser, session: SessionDep) -> Response:
    return await _list_page(request, session, user)


@router.post("/households", dependencies=[CsrfChecked])
async def create_household(
    request: Request,
    user: PageUser,
    session: SessionDep,
    name: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "address": address, "region": region}
    try:
        body = HouseholdCreate(name=name, address=address, region=region)
        household = await service.create_household(
            session, owner=user, name=body.name, address=body.address, region_code=body.region
        )
    except FormFailure as exc:
        message, status = failure(exc)
        return await _list_page(
            request, session, user, form=form, error=message, status_code=status
        )
    return redirect(f"/households/{household.id}")


async def _detail_page(
    request: Request,
    session: SessionDep,
    user: User,
    household_id: uuid.UUID,
    *,
    provisioned: service.ProvisionedAgent | None = None,
    error: str | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    detail = await service.household_detail(session, actor=user, household_id=household_id)
    region = await tariffs.get_region(session, detail.household.region_code)
    _, prices = await tariffs.tariffs_in_force(session, region.code)
    today = await telemetry.today(session, actor=user, household_id=household_id)
    return render(
        request,
        "households/detail.html",
        {
            "detail": detail,
            "region": region,
            "prices": prices,
            "regions": await tariffs.list_regions(session),
            "provisioned": provisioned,
            "error": error,
            "saved": saved,
            "today": today,
            "chart": today_chart(today),
        },
        user=user,
        status_code=status_code,
    )


@router.get("/households/{household_id}")
async def household(
    request: Request, household_id: uuid.UUID, user: PageUser, session: SessionDep
) -> Response:
    return await _detail_page(request, session, user, household_id)


@router.post("/households/{household_id}", dependencies=[CsrfChecked])
async def update_household(
    request: Request,
    household_id: uuid.UUID,
    user: PageUser,
    session: SessionDep,
    name: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    region: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = HouseholdUpdate(name=name, address=address, region=region)
        await service.update_household(
            session,
            actor=user,
            household_id=household_id,
            name=body.name,
            address=body.address,
            region_code=body.region,
        )
    except FormFailure as exc:
        if isinstance(exc, service.HouseholdNotFound):
            raise
        # Undo the half-applied edit before showing the page again.
        await session.rollback()
        await session.refresh(user)
        message, status = failure(exc)
        return await _detail_page(
            request, session, user, household_id, error=message, status_code=status
        )
    return await _detail_page(request, session, user, household_id, saved=True)


@router.post("/households/{household_id}/agents", dependencies=[CsrfChecked])
async def register_agent(
    request: Request,
    household_id: uuid.UUID,
    user: PageUser,
    session: SessionDep,
    runtime: RuntimeDep,
    name: Annotated[str, Form()] = "edge agent",
) -> Response:
    try:
        body = AgentCreate(name=name)
    except ValidationError as exc:
        message, status = failure(exc)
        return await _detail_page(
            request, session, user, household_id, error=message, status_code=status
        )
    provisioned = await service.register_agent(
        session,
        actor=user,
        household_id=household_id,
        name=body.name,
        mqtt_url=runtime.settings.resolved_public_mqtt_url(),
    )
    # Rendered, not redirected: the secret exists only in this response.
    return await _detail_page(request, session, user, household_id, provisioned=provisioned)


@router.post("/households/{household_id}/agents/{agent_id}/revoke", dependencies=[CsrfChecked])
async def revoke_agent(
    household_id: uuid.UUID, agent_id: uuid.UUID, user: PageUser, session: SessionDep
) -> Response:
    await service.revoke_agent(session, actor=user, household_id=household_id, agent_id=agent_id)
    return redirect(f"/households/{household_id}")


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
    try:
        body = MeterReadingIn(resource=resource, value=form_decimal("value", value))
        await telemetry.record_meter_reading(
            session,
            actor=user,
            household_id=household_id,
            resource=Resource(body.resource),
            value=body.value,
            ts=None,
        )
    except FormFailure as exc:
        if isinstance(exc, service.HouseholdNotFound):
            raise
        message, status = failure(exc)
        return await _detail_page(
            request, session, user, household_id, error=message, status_code=status
        )
    return redirect(f"/households/{household_id}")


@router.get("/admin/households")
async def admin_households(request: Request, admin: PageAdmin, session: SessionDep) -> Response:
    rows, total = await service.list_all_households(session, limit=200)
    return render(request, "households/admin_list.html", {"rows": rows, "total": total}, user=admin)

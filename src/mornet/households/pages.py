"""Pages of the households context: the owner's homes, agent provisioning, admin list."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.dependencies import SessionDep, SettingsDep
from mornet.households import service
from mornet.households.schemas import AgentCreate, HouseholdCreate, HouseholdUpdate
from mornet.identity.auth import PageAdmin, PageUser
from mornet.pagination import MAX_LIMIT, PageRequest
from mornet.tariffs import service as tariffs
from mornet.web.pages import (
    CsrfChecked,
    redirect,
    render,
    submit_form,
)

router = APIRouter(include_in_schema=False)

HouseholdPanel = Callable[[Request, AsyncSession, Actor, uuid.UUID], Awaitable[Markup]]
"""A section another context adds to the household page (telemetry's "Today"); the app
registers them in `app.state.household_panels`, so households imports none of their pages."""


async def _list_page(
    request: Request,
    session: SessionDep,
    user: Actor,
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
    async def create() -> Response:
        body = HouseholdCreate(name=name, address=address, region=region)
        household = await service.create_household(
            session, owner=user, name=body.name, address=body.address, region_code=body.region
        )
        return redirect(f"/households/{household.id}")

    async def refused(message: str, status: int) -> Response:
        form = {"name": name, "address": address, "region": region}
        return await _list_page(
            request, session, user, form=form, error=message, status_code=status
        )

    return await submit_form(session, create, refused)


async def _detail_page(
    request: Request,
    session: SessionDep,
    user: Actor,
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
    panels: list[HouseholdPanel] = getattr(request.app.state, "household_panels", [])
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
            "panels": [await panel(request, session, user, household_id) for panel in panels],
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
    async def save() -> Response:
        body = HouseholdUpdate(name=name, address=address, region=region)
        await service.update_household(
            session,
            actor=user,
            household_id=household_id,
            name=body.name,
            address=body.address,
            region_code=body.region,
        )
        return await _detail_page(request, session, user, household_id, saved=True)

    async def refused(message: str, status: int) -> Response:
        return await _detail_page(
            request, session, user, household_id, error=message, status_code=status
        )

    return await submit_form(session, save, refused, raise_through=(service.HouseholdNotFound,))


@router.post("/households/{household_id}/agents", dependencies=[CsrfChecked])
async def register_agent(
    request: Request,
    household_id: uuid.UUID,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "edge agent",
) -> Response:
    async def provision() -> Response:
        provisioned = await service.register_agent(
            session,
            actor=user,
            household_id=household_id,
            name=AgentCreate(name=name).name,
            mqtt_url=settings.resolved_public_mqtt_url(),
        )
        # Rendered, not redirected: the secret exists only in this response.
        return await _detail_page(request, session, user, household_id, provisioned=provisioned)

    async def refused(message: str, status: int) -> Response:
        return await _detail_page(
            request, session, user, household_id, error=message, status_code=status
        )

    return await submit_form(
        session, provision, refused, raise_through=(service.HouseholdNotFound,)
    )


@router.post("/households/{household_id}/agents/{agent_id}/revoke", dependencies=[CsrfChecked])
async def revoke_agent(
    household_id: uuid.UUID, agent_id: uuid.UUID, user: PageUser, session: SessionDep
) -> Response:
    await service.revoke_agent(session, actor=user, household_id=household_id, agent_id=agent_id)
    return redirect(f"/households/{household_id}")


@router.get("/admin/households")
async def admin_households(request: Request, admin: PageAdmin, session: SessionDep) -> Response:
    rows, total = await service.list_all_households(session, page=PageRequest(limit=MAX_LIMIT))
    return render(request, "households/admin_list.html", {"rows": rows, "total": total}, user=admin)

"""REST routes of the oracle. Reading tariffs is public: they are published prices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from mornet.dependencies import SessionDep
from mornet.errors import answers
from mornet.fields import Moment
from mornet.identity.auth import AdminUser
from mornet.resources import Resource
from mornet.tariffs import service
from mornet.tariffs.schemas import (
    RegionCreate,
    RegionOut,
    RegionTariffs,
    TariffCreate,
    TariffOut,
)

router = APIRouter(prefix="/api", tags=["tariffs"])


def tariff_out(quote: service.TariffQuote) -> TariffOut:
    return TariffOut.model_validate(quote)


@router.get("/regions")
async def list_regions(session: SessionDep) -> list[RegionOut]:
    return [RegionOut.model_validate(r) for r in await service.list_regions(session)]


@router.get("/tariffs/{region}")
async def tariffs_for_region(
    region: str,
    session: SessionDep,
    at: Annotated[Moment | None, Query(description="ISO 8601 time with zone; default now")] = None,
) -> RegionTariffs:
    moment: datetime = at or datetime.now().astimezone()
    found, quotes = await service.tariffs_in_force(session, region, moment)
    return RegionTariffs(region=found, at=moment, tariffs=[tariff_out(q) for q in quotes])


@router.get("/tariffs/{region}/history")
async def tariff_history(
    region: str, session: SessionDep, resource: Resource | None = None
) -> list[TariffOut]:
    return [tariff_out(q) for q in await service.tariff_history(session, region, resource)]


@router.post("/admin/tariffs", status_code=status.HTTP_201_CREATED, responses=answers(404, 409))
async def add_tariff(body: TariffCreate, admin: AdminUser, session: SessionDep) -> TariffOut:
    quote = await service.add_tariff(session, body, actor_id=admin.id)
    return tariff_out(quote)


@router.post("/admin/regions", status_code=status.HTTP_201_CREATED, responses=answers(409))
async def create_region(body: RegionCreate, _: AdminUser, session: SessionDep) -> RegionOut:
    region = await service.create_region(
        session, code=body.code, name=body.name, timezone=body.timezone
    )
    return RegionOut.model_validate(region)

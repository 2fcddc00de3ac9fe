"""Every SQL query of the tariffs context."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.resources import Resource
from mornet.tariffs.models import Region, Tariff


async def get_region(session: AsyncSession, code: str) -> Region | None:
    return await session.get(Region, code)


async def list_regions(session: AsyncSession) -> Sequence[Region]:
    return (await session.scalars(select(Region).order_by(Region.code))).all()


async def latest(session: AsyncSession, region_code: str, resource: Resource) -> Tariff | None:
    query = (
        select(Tariff)
        .where(Tariff.region_code == region_code, Tariff.resource == resource)
        .order_by(Tariff.valid_from.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def history(session: AsyncSession, region_code: str) -> Sequence[Tariff]:
    """Every price of the region, latest first per resource."""
    query = select(Tariff).where(Tariff.region_code == region_code)
    return (await session.scalars(query.order_by(Tariff.resource, Tariff.valid_from.desc()))).all()

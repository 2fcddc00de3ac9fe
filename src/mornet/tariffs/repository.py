"""Every SQL query of the tariffs context."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.resources import Resource
from mornet.tariffs.models import Region, Tariff


async def get_region(session: AsyncSession, code: str) -> Region | None:
    return await session.get(Region, code)


async def list_regions(session: AsyncSession) -> Sequence[Region]:
    return (await session.scalars(select(Region).order_by(Region.code))).all()


async def in_force(session: AsyncSession, region_code: str, at: datetime) -> Sequence[Tariff]:
    """For each resource, the row with the latest valid_from not after `at`."""
    latest = (
        select(Tariff.resource, func.max(Tariff.valid_from).label("valid_from"))
        .where(Tariff.region_code == region_code, Tariff.valid_from <= at)
        .group_by(Tariff.resource)
        .subquery()
    )
    query = (
        select(Tariff)
        .join(
            latest,
            (Tariff.resource == latest.c.resource) & (Tariff.valid_from == latest.c.valid_from),
        )
        .where(Tariff.region_code == region_code)
        .order_by(Tariff.resource)
    )
    return (await session.scalars(query)).all()


async def one_in_force(
    session: AsyncSession, region_code: str, resource: Resource, at: datetime
) -> Tariff | None:
    query = (
        select(Tariff)
        .where(
            Tariff.region_code == region_code,
            Tariff.resource == resource,
            Tariff.valid_from <= at,
        )
        .order_by(Tariff.valid_from.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def latest(session: AsyncSession, region_code: str, resource: Resource) -> Tariff | None:
    query = (
        select(Tariff)
        .where(Tariff.region_code == region_code, Tariff.resource == resource)
        .order_by(Tariff.valid_from.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def history(
    session: AsyncSession, region_code: str, resource: Resource | None
) -> Sequence[Tariff]:
    query = select(Tariff).where(Tariff.region_code == region_code)
    if resource is not None:
        query = query.where(Tariff.resource == resource)
    return (await session.scalars(query.order_by(Tariff.resource, Tariff.valid_from.desc()))).all()

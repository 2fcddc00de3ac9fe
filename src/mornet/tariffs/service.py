"""The oracle's rules: which price is in force where and when, and how prices are added."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from mornet import outbox
from mornet.changes import cached_read, topics_of
from mornet.db import utcnow
from mornet.errors import Conflict, NotFound, ValidationFailed
from mornet.resources import CURRENCY, Resource
from mornet.tariffs import repository
from mornet.tariffs.events import TariffPublished
from mornet.tariffs.models import PRICE_SCALE, Region, Tariff
from mornet.tariffs.schemas import TariffCreate

PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_SCALE)


# A form filled in at 12:00:00 for "now" arrives a little later; that is not backdating.
BACKDATING_TOLERANCE = timedelta(minutes=5)


class UnknownRegion(NotFound):
    code = "unknown_region"

    def __init__(self, region_code: str) -> None:
        super().__init__(f"no region {region_code!r}")


class NoTariffInForce(NotFound):
    code = "no_tariff"


@dataclass(frozen=True)
class TariffQuote:
    """A price in force, as other contexts (cost engine, market) consume it."""

    id: uuid.UUID
    region: str
    resource: Resource
    price: Decimal
    valid_from: datetime
    is_sample: bool
    note: str

    @property
    def unit(self) -> str:
        return self.resource.unit

    @property
    def currency(self) -> str:
        return CURRENCY


def _quote(tariff: Tariff) -> TariffQuote:
    return TariffQuote(
        id=tariff.id,
        region=tariff.region_code,
        resource=Resource(tariff.resource),
        price=tariff.price,
        valid_from=tariff.valid_from,
        is_sample=tariff.is_sample,
        note=tariff.note,
    )


async def list_regions(session: AsyncSession) -> Sequence[Region]:
    return await repository.list_regions(session)


async def get_region(session: AsyncSession, region_code: str) -> Region:
    region = await repository.get_region(session, region_code.upper())
    if region is None:
        raise UnknownRegion(region_code)
    return region


async def create_region(session: AsyncSession, *, code: str, name: str, timezone: str) -> Region:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"unknown time zone {timezone!r}") from exc
    if await repository.get_region(session, code) is not None:
        raise Conflict(f"region {code} already exists", code="region_exists")
    region = Region(code=code, name=name, timezone=timezone, is_sample=False, created_at=utcnow())
    session.add(region)
    await session.flush()
    return region


TARIFF_TOPICS = topics_of(Region, Tariff)
"""Regions and prices change only when these move (prices are only ever added)."""


async def _tariff_book(
    session: AsyncSession, region_code: str
) -> tuple[str, tuple[TariffQuote, ...]]:
    """A region's code and its whole price history, latest first per resource, from the
    process's cache while no region or price was added (a missing region is refused)."""

    code = region_code.upper()

    async def read() -> tuple[str, tuple[TariffQuote, ...]] | None:
        region = await repository.get_region(session, code)
        if region is None:
            return None
        history = await repository.history(session, region.code)
        return region.code, tuple(_quote(row) for row in history)

    book = await cached_read(session, "tariffs.book", TARIFF_TOPICS, code, read)
    if book is None:
        raise UnknownRegion(region_code)
    return book


async def known_region(session: AsyncSession, region_code: str) -> str:
    """The region's code, from the cached tariff book; an unknown region is refused (404)."""
    code, _ = await _tariff_book(session, region_code)
    return code


async def tariffs_in_force(
    session: AsyncSession, region_code: str, at: datetime | None = None
) -> tuple[str, list[TariffQuote]]:
    """The region's code and, per resource, the price with the latest start not after `at`."""
    code, book = await _tariff_book(session, region_code)
    moment = at or utcnow()
    in_force: dict[Resource, TariffQuote] = {}
    for quote in book:  # latest first within each resource
        if quote.valid_from <= moment and quote.resource not in in_force:
            in_force[quote.resource] = quote
    return code, [in_force[r] for r in sorted(in_force)]


async def price_at(
    session: AsyncSession, *, region_code: str, resource: Resource, at: datetime
) -> TariffQuote:
    """The price of `resource` in `region_code` in force at `at` (for the cost engine)."""
    code, book = await _tariff_book(session, region_code)
    for quote in book:
        if quote.resource == resource and quote.valid_from <= at:
            return quote
    raise NoTariffInForce(
        f"no {resource.label.lower()} tariff in force in {code} at {at.isoformat()}"
    )


async def tariff_history(
    session: AsyncSession, region_code: str, resource: Resource | None = None
) -> list[TariffQuote]:
    _, book = await _tariff_book(session, region_code)
    return [quote for quote in book if resource is None or quote.resource == resource]


async def add_tariff(
    session: AsyncSession, request: TariffCreate, *, actor_id: uuid.UUID | None
) -> TariffQuote:
    """Publish a new price. It starts now or later, and after the latest price of the same
    region and resource, so what was in force at any past moment never changes."""
    region = await get_region(session, request.region)
    resource, price, valid_from = request.resource, request.price, request.valid_from
    now = utcnow()
    starts = valid_from or now
    if price <= 0:
        raise ValidationFailed("a tariff must be a positive price")
    if starts < now - BACKDATING_TOLERANCE:
        raise ValidationFailed(
            "valid_from is in the past: a tariff cannot change what was already in force",
            code="tariff_in_past",
        )
    latest = await repository.latest(session, region.code, resource)
    if latest is not None and starts <= latest.valid_from:
        raise Conflict(
            f"a {resource.label.lower()} tariff for {region.code} already applies from "
            f"{latest.valid_from.isoformat()}; a new one must start after it",
            code="tariff_not_after_latest",
        )
    tariff = Tariff(
        region_code=region.code,
        resource=resource,
        price=price.quantize(PRICE_QUANTUM),
        valid_from=starts,
        note=request.note.strip(),
        is_sample=False,
        created_at=now,
        created_by=actor_id,
    )
    session.add(tariff)
    await session.flush()
    await outbox.record(
        session,
        TariffPublished(
            tariff_id=tariff.id,
            region=region.code,
            resource=resource.value,
            price=tariff.price,
            valid_from=starts,
            by=actor_id,
        ),
    )
    return _quote(tariff)

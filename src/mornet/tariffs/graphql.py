"""GraphQL types, queries and mutations of the oracle."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import strawberry

from mornet.db import utcnow
from mornet.errors import ValidationFailed
from mornet.graphql import Info, validated
from mornet.tariffs import service
from mornet.tariffs.schemas import TariffCreate


@strawberry.type(name="Tariff")
class TariffType:
    id: uuid.UUID
    resource: str
    price: Decimal
    unit: str
    currency: str
    valid_from: datetime
    is_sample: bool
    note: str

    @classmethod
    def of(cls, quote: service.TariffQuote) -> TariffType:
        return cls(
            id=quote.id,
            resource=str(quote.resource),
            price=quote.price,
            unit=quote.unit,
            currency=quote.currency,
            valid_from=quote.valid_from,
            is_sample=quote.is_sample,
            note=quote.note,
        )


@strawberry.type(name="RegionTariffs")
class RegionTariffsType:
    region: str
    at: datetime
    tariffs: list[TariffType]


@strawberry.type
class TariffsQuery:
    @strawberry.field(description="Prices in force in a region (ISO 3166-2) at a time (now).")
    async def tariffs(
        self, info: Info, region: str, at: datetime | None = None
    ) -> RegionTariffsType:
        moment = at or utcnow()
        if moment.tzinfo is None:
            raise ValidationFailed("`at` needs a time zone, e.g. 2026-01-01T00:00:00Z")
        found, quotes = await service.tariffs_in_force(info.context.session, region, moment)
        return RegionTariffsType(
            region=found.code, at=moment, tariffs=[TariffType.of(q) for q in quotes]
        )


@strawberry.type
class TariffsMutation:
    @strawberry.mutation(description="Admin: publish a new price from `valid_from` (now).")
    async def add_tariff(
        self,
        info: Info,
        region: str,
        resource: str,
        price: Decimal,
        valid_from: datetime | None = None,
        note: str = "",
    ) -> TariffType:
        admin = await info.context.admin()
        body = validated(
            TariffCreate,
            region=region,
            resource=resource,
            price=price,
            valid_from=valid_from,
            note=note,
        )
        quote = await service.add_tariff(info.context.session, body, actor_id=admin.id)
        return TariffType.of(quote)

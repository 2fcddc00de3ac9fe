"""GraphQL types, queries and mutations of the oracle."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from mornet.db import utcnow
from mornet.errors import ValidationFailed
from mornet.graphql import Info, validated
from mornet.tariffs import service
from mornet.tariffs.schemas import TariffCreate, TariffOut


@strawberry.experimental.pydantic.type(model=TariffOut, all_fields=True, name="Tariff")
class TariffType:
    """The REST schema, served as a GraphQL type (one definition of the fields)."""

    resource: str


def tariff_type(quote: service.TariffQuote) -> TariffType:
    return TariffType.from_pydantic(TariffOut.model_validate(quote))


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
        return RegionTariffsType(region=found, at=moment, tariffs=[tariff_type(q) for q in quotes])


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
        return tariff_type(quote)

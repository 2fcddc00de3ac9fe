from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mornet.fields import DecimalText, Moment, TrimmedText
from mornet.resources import Resource
from mornet.tariffs.models import PRICE_SCALE


def _upper(value: str) -> str:
    return value.upper()


def _known_zone(value: str) -> str:
    if value not in available_timezones():
        raise ValueError(f"unknown time zone {value!r}")
    return value


RegionCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$"),
    AfterValidator(_upper),
]
"""ISO 3166-2 (RU-MOW); any case on input, upper case once read."""
Price = Annotated[Decimal, DecimalText(places=PRICE_SCALE, digits=14 - PRICE_SCALE, positive=True)]
TimeZone = Annotated[
    str,
    Field(
        default="Europe/Moscow",
        json_schema_extra={"enum": sorted(available_timezones())},
        description="An IANA time zone.",
    ),
    AfterValidator(_known_zone),
]


class RegionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    timezone: str
    is_sample: bool


class RegionCreate(BaseModel):
    code: RegionCode
    name: Annotated[str, TrimmedText(200)]
    timezone: TimeZone = "Europe/Moscow"


class TariffOut(BaseModel):
    """One price as the oracle publishes it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    resource: Resource
    price: Decimal
    unit: str
    currency: str
    valid_from: datetime
    is_sample: bool
    note: str


class RegionTariffs(BaseModel):
    region: str
    at: datetime
    tariffs: list[TariffOut]


class TariffCreate(BaseModel):
    region: RegionCode
    resource: Resource
    price: Price
    valid_from: Moment | None = None
    """When the price starts to apply; now if omitted. Never before the latest existing one."""
    note: str = Field(default="", max_length=500)

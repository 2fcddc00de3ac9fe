from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from mornet.resources import Resource
from mornet.tariffs.models import PRICE_SCALE


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


RegionCode = Annotated[
    str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
]
Price = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=PRICE_SCALE)]


class RegionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    timezone: str
    is_sample: bool


class RegionCreate(BaseModel):
    code: RegionCode
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    timezone: str = Field(default="Europe/Moscow", max_length=64)


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
    valid_from: AwareDatetime | None = None
    """When the price starts to apply; now if omitted. Never before the latest existing one."""
    note: str = Field(default="", max_length=500)

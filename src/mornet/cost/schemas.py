"""The cost context's wire shapes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mornet.fields import Moment
from mornet.resources import CURRENCY, Resource


class CalculationRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    household_id: uuid.UUID
    start: Moment = Field(alias="from")
    """The period's start (inclusive), ISO 8601 with its zone."""
    end: Moment = Field(alias="to")
    """The period's end (exclusive); at most 366 days after its start."""


@dataclass(frozen=True, slots=True)
class Calculation:
    """A kept cost calculation, as the service hands it out (never the table's row)."""

    id: uuid.UUID
    household_id: uuid.UUID
    period_start: datetime
    period_end: datetime
    plugin: str
    cost_e: Decimal
    cost_h: Decimal
    cost_w: Decimal
    cost_total: Decimal
    lines: list[dict[str, Any]]
    """The priced lines with their segments, amounts as decimal strings."""
    created_at: datetime
    created_by: uuid.UUID | None


class SegmentOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    quantity: Decimal
    price: Decimal
    """RUB per unit, the tariff's."""
    tariff_id: uuid.UUID


class LineOut(BaseModel):
    resource: Resource
    quantity: Decimal
    unit: str
    cost: Decimal
    """RUB, rounded half-up to the kopeck once for the line."""
    segments: list[SegmentOut]


class CalculationOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: uuid.UUID
    household_id: uuid.UUID
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    currency: str = CURRENCY
    plugin: str
    lines: list[LineOut]
    cost_e: Decimal
    cost_h: Decimal
    cost_w: Decimal
    cost_total: Decimal
    """The sum of the rounded lines."""
    created_at: datetime

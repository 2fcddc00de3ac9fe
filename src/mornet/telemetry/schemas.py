"""Validation and normalisation of telemetry, and the API's shapes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mornet.fields import DecimalText, Moment
from mornet.resources import Resource
from mornet.telemetry.models import METER_DEVICE_PREFIX
from mornet.wire.telemetry import MAX_READINGS_PER_MESSAGE

# Stored precision (decimal places): mWh of energy, mW of power, mV, 0.1 mA, and the
# millilitre of water. The tables keep each as a whole count of that unit.
COUNTER_SCALE = 6
POWER_SCALE = 3
VOLTAGE_SCALE = 3
CURRENT_SCALE = 4
COUNTER_PLACES = Decimal(1).scaleb(-COUNTER_SCALE)
POWER_PLACES = Decimal(1).scaleb(-POWER_SCALE)
VOLTAGE_PLACES = Decimal(1).scaleb(-VOLTAGE_SCALE)
CURRENT_PLACES = Decimal(1).scaleb(-CURRENT_SCALE)

# Every stored column holds its bound with room to spare: 10^12 at 10^-6 (the finest scale)
# is 10^18 base units, under the 9.2 * 10^18 of a 64-bit integer column.
Measure = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), allow_inf_nan=False)]
EARLIEST_READING = datetime(2000, 1, 1, tzinfo=UTC)


def _plausible_time(value: datetime) -> datetime:
    """A reading's time in UTC, from 2000 on (the future bound is checked at arrival)."""
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("ts is out of range") from None
    if moment < EARLIEST_READING:
        raise ValueError("ts is before 2000-01-01T00:00:00Z")
    return moment


ReadingTime = Annotated[Moment, AfterValidator(_plausible_time)]

# Vendor spellings accepted on the wire → (canonical field, factor to the canonical unit).
VENDOR_UNITS: dict[str, tuple[str, Decimal]] = {
    "power_mw": ("power_w", Decimal("0.001")),
    "power_kw": ("power_w", Decimal(1000)),
    "energy_kwh": ("energy_wh", Decimal(1000)),
    "voltage_mv": ("voltage_v", Decimal("0.001")),
    "current_ma": ("current_a", Decimal("0.001")),
}


_VENDOR_KEYS = frozenset(VENDOR_UNITS)


def _q(value: Decimal | None, places: Decimal) -> Decimal | None:
    return None if value is None else value.quantize(places, rounding=ROUND_HALF_EVEN)


def _units(value: Decimal | None, scale: int) -> int | None:
    """`value` as a whole count of 10^-scale, rounded half to even (rounded once, then
    shifted exactly)."""
    if value is None:
        return None
    return int(value.quantize(_PLACES[scale], rounding=ROUND_HALF_EVEN).scaleb(scale))


_PLACES = {
    COUNTER_SCALE: COUNTER_PLACES,
    POWER_SCALE: POWER_PLACES,
    VOLTAGE_SCALE: VOLTAGE_PLACES,
    CURRENT_SCALE: CURRENT_PLACES,
}


class WireReading(BaseModel):
    """One reading as an agent sends it; vendor units are converted on the way in."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    resource: Resource
    ts: ReadingTime
    seq: int = Field(ge=0, lt=2**63)
    power_w: Measure | None = None
    energy_wh: Measure | None = None
    voltage_v: Measure | None = None
    current_a: Measure | None = None
    value: Measure | None = None

    @model_validator(mode="before")
    @classmethod
    def _vendor_units(cls, data: Any) -> Any:
        if not isinstance(data, dict) or _VENDOR_KEYS.isdisjoint(data):
            return data
        data = dict(data)
        for vendor, (field, factor) in VENDOR_UNITS.items():
            if vendor in data:
                if data.get(field) is not None:
                    raise ValueError(f"both {vendor} and {field} given")
                raw = data.pop(vendor)
                if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                    raise ValueError(f"{vendor} must be a number")
                try:
                    data[field] = Decimal(str(raw)) * factor
                except InvalidOperation:
                    raise ValueError(f"{vendor} must be a number, not {raw!r}") from None
        return data

    @model_validator(mode="after")
    def _one_counter(self) -> WireReading:
        if self.resource == Resource.ELECTRICITY:
            if self.energy_wh is None and self.value is None:
                raise ValueError("an electricity reading needs energy_wh (the cumulative counter)")
        elif self.value is None:
            raise ValueError(
                f"a {self.resource.label.lower()} reading needs value (the meter index)"
            )
        if self.energy_wh is not None and self.value is not None:
            raise ValueError("give either energy_wh or value, not both")
        return self

    def counter(self) -> Decimal:
        """The cumulative counter in the resource's unit (kWh or m³)."""
        if self.energy_wh is not None:
            return self.energy_wh / 1000
        assert self.value is not None
        return self.value

    def in_units(self) -> UnitReading:
        """The reading as stored, in whole units (see `UnitReading`)."""
        counter = self.value if self.energy_wh is None else self.energy_wh.scaleb(-3)
        return _in_units(self, counter)


class SignedReadings(BaseModel):
    """What an agent signs: its id and its readings."""

    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID
    readings: list[WireReading] = Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)


class WireMessage(SignedReadings):
    sig: str = Field(pattern=r"^[0-9a-f]{128}$")


class NormalisedReading(BaseModel):
    """The canonical reading the pipeline stores."""

    device_id: str
    resource: Resource
    ts: datetime
    seq: int
    counter: Decimal
    power_w: Decimal | None = None
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None

    @classmethod
    def of(cls, reading: WireReading) -> NormalisedReading:
        return cls(
            device_id=reading.device_id,
            resource=reading.resource,
            ts=reading.ts,
            seq=reading.seq,
            counter=_q(reading.counter(), COUNTER_PLACES) or Decimal(0),
            power_w=_q(reading.power_w, POWER_PLACES),
            voltage_v=_q(reading.voltage_v, VOLTAGE_PLACES),
            current_a=_q(reading.current_a, CURRENT_PLACES),
        )

    @classmethod
    def of_meter(cls, *, resource: Resource, value: Decimal, ts: datetime) -> NormalisedReading:
        """A household-entered meter index: one device per resource, seq from the time so
        later entries sort after earlier ones."""
        return cls(
            device_id=f"{METER_DEVICE_PREFIX}{resource.value}",
            resource=resource,
            ts=ts,
            seq=int(ts.timestamp() * 1000),
            counter=_q(value, COUNTER_PLACES) or Decimal(0),
        )

    def in_units(self) -> UnitReading:
        return _in_units(self, self.counter)


def _in_units(reading: WireReading | NormalisedReading, counter: Decimal | None) -> UnitReading:
    """A reading's measures rounded once to the units its table keeps."""
    return UnitReading(
        reading.device_id,
        reading.resource.value,
        reading.ts,
        reading.seq,
        _units(counter, COUNTER_SCALE) or 0,
        _units(reading.power_w, POWER_SCALE),
        _units(reading.voltage_v, VOLTAGE_SCALE),
        _units(reading.current_a, CURRENT_SCALE),
    )


class NormalisedBatch(BaseModel):
    """A household's verified, canonical readings (the bus's form before `UnitBatch`)."""

    household_id: uuid.UUID
    agent_id: uuid.UUID | None
    readings: list[NormalisedReading]

    def in_units(self) -> UnitBatch:
        return UnitBatch(self.household_id, self.agent_id, [r.in_units() for r in self.readings])


class NormalisedBundle(BaseModel):
    """Several batches in one bus message (the bus's form before `UnitBatch`)."""

    batches: list[NormalisedBatch] = Field(min_length=1)


Whole = Annotated[int, Field(ge=0, lt=2**63)]
"""A count that fits the tables' 64-bit integer columns."""


class UnitReading(NamedTuple):
    """A canonical reading in the whole units the tables keep: the counter in 10^-6 kWh or
    m³, power in mW, voltage in mV, current in 10^-4 A. The pipeline carries integers from
    the gateway to the table: exact, and far cheaper per reading than decimals."""

    device_id: Annotated[str, Field(min_length=1, max_length=100)]
    resource: Annotated[str, Field(pattern=r"^[EHW]$")]
    ts: datetime
    seq: Whole
    counter: Whole
    power: Whole | None
    voltage: Whole | None
    current: Whole | None


@dataclass(frozen=True, slots=True)
class UnitBatch:
    """What the gateway puts on the bus: one message's verified readings, in units."""

    household_id: uuid.UUID
    agent_id: uuid.UUID | None
    readings: list[UnitReading]


BUNDLE_VERSION = 2


def encode_bundle(batches: list[UnitBatch]) -> bytes:
    """One bus message for several batches: `{"v": 2, "batches": [{"household_id",
    "agent_id", "readings": [[device_id, resource, ts, seq, counter, power, voltage,
    current], …]}, …]}`, times in ISO 8601 with their zone, quantities in units."""
    stamps: dict[datetime, str] = {}  # a message's readings mostly share their time

    def stamp(ts: datetime) -> str:
        text = stamps.get(ts)
        if text is None:
            text = stamps[ts] = ts.isoformat()
        return text

    return json.dumps(
        {
            "v": BUNDLE_VERSION,
            "batches": [
                {
                    "household_id": str(batch.household_id),
                    "agent_id": None if batch.agent_id is None else str(batch.agent_id),
                    "readings": [(r[0], r[1], stamp(r[2]), *r[3:]) for r in batch.readings],
                }
                for batch in batches
            ],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


class _UnitBatchIn(BaseModel):
    model_config = ConfigDict(strict=True)  # the bus carries numbers as numbers

    household_id: uuid.UUID
    agent_id: uuid.UUID | None
    readings: list[UnitReading] = Field(min_length=1)


class UnitBundle(BaseModel):
    """A bus message of `encode_bundle`, checked on the way in."""

    model_config = ConfigDict(strict=True)

    v: Literal[2]
    batches: list[_UnitBatchIn] = Field(min_length=1)

    def unit_batches(self) -> list[UnitBatch]:
        return [UnitBatch(b.household_id, b.agent_id, b.readings) for b in self.batches]


class ReadingOut(BaseModel):
    device_id: str
    seq: int
    resource: Resource
    ts: datetime
    counter: Decimal
    """Cumulative counter in kWh (E, H) or m³ (W)."""
    power_w: Decimal | None
    voltage_v: Decimal | None
    current_a: Decimal | None


class ConsumptionPoint(BaseModel):
    start: datetime
    resource: Resource
    quantity: Decimal
    unit: str


MeterIndex = Annotated[
    Decimal,
    DecimalText(places=6, digits=12, positive=False, description="The index the meter shows."),
]


class MeterReadingIn(BaseModel):
    resource: Literal["E", "H", "W"]
    """The main meter's resource: once a household enters its indexes, that meter is what is
    billed for the resource, and its plugs only show where the use went."""
    value: MeterIndex
    ts: ReadingTime | None = None


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    received_at: datetime
    topic: str
    reason: str
    payload_size: int
    payload_preview: str

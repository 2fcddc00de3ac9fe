"""Rating: a household's use of a resource, priced at the tariff in force while it was used.

A use is a counter delta over a time span (an hour of the hourly consumption). A span that a
tariff change cuts is split at the change in proportion to time; each segment is priced at its
tariff. Quantities stay exact at the stored precision (10^-6) and the segments of a use add up
to it exactly. A line (one resource) costs the sum of its segments' quantity times price, rounded
once, half-up, to the kopeck; a calculation's total is the sum of its rounded lines.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from mornet.errors import NotFound
from mornet.resources import Resource

QUANTITY = Decimal("0.000001")
"""The precision readings are stored in (kWh or m³)."""
KOPECK = Decimal("0.01")


class NoTariffForUse(NotFound):
    code = "no_tariff"


@dataclass(frozen=True)
class PricePeriod:
    """A price in force from `start` until the next period of the same timeline."""

    start: datetime
    price: Decimal
    """RUB per unit."""
    tariff_id: uuid.UUID


@dataclass(frozen=True)
class Use:
    """`quantity` used over [start, end)."""

    start: datetime
    end: datetime
    quantity: Decimal


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    quantity: Decimal
    price: Decimal
    tariff_id: uuid.UUID

    @property
    def amount(self) -> Decimal:
        """Unrounded RUB."""
        return self.quantity * self.price


@dataclass(frozen=True)
class Line:
    resource: Resource
    quantity: Decimal
    cost: Decimal
    """RUB, rounded half-up to the kopeck once, from the exact segment amounts."""
    segments: tuple[Segment, ...]

    @property
    def unit(self) -> str:
        return self.resource.unit


def split(
    use: Use, timeline: Sequence[PricePeriod], starts: Sequence[datetime] | None = None
) -> list[Segment]:
    """The segments of `use` under `timeline` (sorted by start; `starts` are its starts, when
    the caller has them): one per tariff in force during it, quantities in proportion to
    time, adding up exactly to the use."""
    starts = starts if starts is not None else [period.start for period in timeline]
    first = bisect_right(starts, use.start) - 1
    if first < 0:
        raise NoTariffForUse(f"no tariff in force at {use.start.isoformat()}")
    if first + 1 == len(timeline) or starts[first + 1] >= use.end:
        # The common case: one tariff for the whole use.
        period = timeline[first]
        return [Segment(use.start, use.end, use.quantity, period.price, period.tariff_id)]
    bounds = [use.start]
    periods = [timeline[first]]
    for period in timeline[first + 1 :]:
        if period.start >= use.end:
            break
        bounds.append(period.start)
        periods.append(period)
    bounds.append(use.end)
    span = (use.end - use.start).total_seconds()
    segments = []
    allotted = Decimal(0)
    for i, period in enumerate(periods):
        # Cumulative rounding: each boundary's share is rounded once, so the parts add up
        # exactly to the whole and none is off by more than one quantum.
        elapsed = Decimal(str((bounds[i + 1] - use.start).total_seconds()))
        upto = (
            use.quantity
            if i == len(periods) - 1
            else (use.quantity * elapsed / Decimal(str(span))).quantize(QUANTITY, ROUND_HALF_UP)
        )
        segments.append(
            Segment(bounds[i], bounds[i + 1], upto - allotted, period.price, period.tariff_id)
        )
        allotted = upto
    return segments


def _merged(segments: Iterable[Segment]) -> list[Segment]:
    """Consecutive segments at the same tariff, as one from the first's start to the last's
    end (hours of use at one price, with or without idle hours between them)."""
    merged: list[Segment] = []
    for segment in segments:
        if merged and merged[-1].tariff_id == segment.tariff_id:
            last = merged[-1]
            quantity = last.quantity + segment.quantity
            merged[-1] = Segment(last.start, segment.end, quantity, last.price, last.tariff_id)
        else:
            merged.append(segment)
    return merged


def rate(resource: Resource, uses: Iterable[Use], timeline: Sequence[PricePeriod]) -> Line:
    """One priced line: every use of `resource`, split at tariff changes."""
    ordered = sorted((u for u in uses if u.quantity), key=lambda u: u.start)
    starts = [period.start for period in timeline]
    segments = _merged(s for use in ordered for s in split(use, timeline, starts))
    exact = sum((s.amount for s in segments), Decimal(0))
    return Line(
        resource=resource,
        quantity=sum((s.quantity for s in segments), Decimal(0)),
        cost=exact.quantize(KOPECK, ROUND_HALF_UP),
        segments=tuple(segments),
    )


def total(lines: Iterable[Line]) -> Decimal:
    """A calculation's total: the sum of its rounded lines."""
    return sum((line.cost for line in lines), Decimal(0))

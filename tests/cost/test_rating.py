"""Rating, over random uses and random tariff-change instants: segments add up exactly to each
use, every segment is priced at the tariff in force in it, re-rating gives the same answer, a
line is rounded once (half-up, to the kopeck) and a total is the sum of its lines."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mornet.cost.plugins import Consumption, ResidentialPlugin, UnknownSector, plugin_for
from mornet.cost.rating import (
    KOPECK,
    QUANTITY,
    NoTariffForUse,
    PricePeriod,
    Use,
    rate,
    split,
    total,
)
from mornet.resources import Resource

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _period(start: datetime, price: str) -> PricePeriod:
    return PricePeriod(start=start, price=Decimal(price), tariff_id=uuid.uuid4())


quantities = st.decimals(min_value=0, max_value=100, places=6, allow_nan=False)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=50, places=4, allow_nan=False)


@st.composite
def timelines(draw: st.DrawFn) -> list[PricePeriod]:
    """A price from before the day, and up to four changes at any second of it."""
    seconds = draw(st.lists(st.integers(1, 24 * 3600 - 1), max_size=4, unique=True))
    starts = [DAY - timedelta(days=30)] + [DAY + timedelta(seconds=s) for s in sorted(seconds)]
    return [PricePeriod(s, draw(prices), uuid.uuid4()) for s in starts]


@st.composite
def hourly_uses(draw: st.DrawFn) -> list[Use]:
    hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=24, unique=True))
    return [
        Use(DAY + timedelta(hours=h), DAY + timedelta(hours=h + 1), draw(quantities)) for h in hours
    ]


def _price_at(timeline: list[PricePeriod], at: datetime) -> PricePeriod:
    return [p for p in timeline if p.start <= at][-1]


@given(quantities, timelines())
def test_a_use_split_at_tariff_changes_adds_up_exactly(
    quantity: Decimal, timeline: list[PricePeriod]
) -> None:
    use = Use(DAY, DAY + timedelta(days=1), quantity)
    segments = split(use, timeline)
    assert sum(s.quantity for s in segments) == quantity
    assert segments[0].start == use.start
    assert segments[-1].end == use.end
    for before, after in itertools.pairwise(segments):
        assert before.end == after.start
    for segment in segments:
        assert segment.quantity >= 0
        assert segment.quantity == segment.quantity.quantize(QUANTITY)
        in_force = _price_at(timeline, segment.start)
        assert (segment.price, segment.tariff_id) == (in_force.price, in_force.tariff_id)
        # In proportion to time, to within one quantum of the stored precision.
        share = quantity * Decimal((segment.end - segment.start).total_seconds()) / 86400
        assert abs(segment.quantity - share) <= QUANTITY


@given(hourly_uses(), timelines())
def test_a_line_is_rounded_once_and_rating_again_gives_the_same(
    uses: list[Use], timeline: list[PricePeriod]
) -> None:
    line = rate(Resource.ELECTRICITY, uses, timeline)
    assert line == rate(Resource.ELECTRICITY, list(reversed(uses)), timeline)
    assert line.quantity == sum(u.quantity for u in uses)
    exact = sum((s.quantity * s.price for s in line.segments), Decimal(0))
    assert line.cost == exact.quantize(KOPECK, ROUND_HALF_UP)
    assert line.unit == "kWh"


def test_a_change_inside_an_hour_is_priced_on_each_side() -> None:
    timeline = [
        _period(DAY - timedelta(days=1), "5.0000"),
        _period(DAY + timedelta(minutes=15), "8.0000"),
    ]
    line = rate(Resource.ELECTRICITY, [Use(DAY, DAY + timedelta(hours=1), Decimal("4"))], timeline)
    assert [(s.quantity, s.price) for s in line.segments] == [
        (Decimal("1.000000"), Decimal("5.0000")),
        (Decimal("3.000000"), Decimal("8.0000")),
    ]
    assert line.cost == Decimal("29.00")  # 1 kWh at 5 and 3 kWh at 8


def test_rounding_is_half_up_once_per_line_and_the_total_sums_the_lines() -> None:
    timeline = [_period(DAY - timedelta(days=1), "0.0050")]
    hours = [
        Use(DAY + timedelta(hours=h), DAY + timedelta(hours=h + 1), Decimal(1)) for h in range(3)
    ]
    # Three hours of 0.005 RUB: 0.015, once rounded half-up → 0.02 (per hour, it would be 0.03).
    line = rate(Resource.WATER, hours, timeline)
    assert line.cost == Decimal("0.02")
    assert len(line.segments) == 1  # consecutive hours at one tariff are one segment
    heat = rate(Resource.HEAT, hours[:1], timeline)
    assert total([line, heat]) == Decimal("0.02") + Decimal("0.01")


def test_use_before_any_tariff_is_refused() -> None:
    timeline = [_period(DAY + timedelta(hours=1), "5")]
    with pytest.raises(NoTariffForUse):
        rate(Resource.ELECTRICITY, [Use(DAY, DAY + timedelta(hours=1), Decimal(1))], timeline)


def test_the_residential_plugin_is_installed_and_the_default() -> None:
    plugin = plugin_for(None)
    assert isinstance(plugin, ResidentialPlugin)
    assert plugin_for("residential") is plugin
    with pytest.raises(UnknownSector):
        plugin_for("tourism")
    timeline = [_period(DAY - timedelta(days=1), "6.5000")]
    hour = Use(DAY, DAY + timedelta(hours=1), Decimal("2.5"))
    lines = plugin.price(
        Consumption(
            household_id=uuid.uuid4(),
            region="RU-MOW",
            start=DAY,
            end=DAY + timedelta(days=1),
            uses={Resource.WATER: [hour], Resource.ELECTRICITY: [hour], Resource.HEAT: []},
            timelines={Resource.ELECTRICITY: timeline, Resource.WATER: timeline},
        )
    )
    assert [(line.resource, line.cost) for line in lines] == [
        (Resource.ELECTRICITY, Decimal("16.25")),
        (Resource.WATER, Decimal("16.25")),
    ]


def test_the_month_panel_shows_use_cost_and_the_tariffs_used() -> None:
    from mornet.web.pages import templates

    timeline = [
        _period(DAY - timedelta(days=1), "5.0000"),
        _period(DAY + timedelta(minutes=30), "8.0000"),
    ]
    line = rate(Resource.ELECTRICITY, [Use(DAY, DAY + timedelta(hours=1), Decimal(2))], timeline)
    html = templates.get_template("cost/_month.html").render(
        start=DAY, lines=[line], total=total([line]), error=None
    )
    assert "2 kWh" in html
    assert "13.00 RUB" in html  # 1 kWh at 5 and 1 kWh at 8
    assert "5 RUB/kWh, 8 RUB/kWh" in html
    assert "Since 01 March 2026" in html

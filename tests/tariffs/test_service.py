from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.resources import Resource
from mornet.tariffs import service
from mornet.tariffs.schemas import TariffCreate


async def test_price_at_is_the_exact_decimal_in_force(session: AsyncSession) -> None:
    quote = await service.price_at(
        session, region_code="RU-NVS", resource=Resource.WATER, at=datetime(2025, 8, 1, tzinfo=UTC)
    )
    assert quote.price == Decimal("44.0000")
    assert isinstance(quote.price, Decimal)
    assert (quote.unit, quote.currency, quote.region) == ("m3", "RUB", "RU-NVS")


async def test_price_at_before_any_tariff_is_an_error(session: AsyncSession) -> None:
    with pytest.raises(service.NoTariffInForce):
        await service.price_at(
            session,
            region_code="RU-MOW",
            resource=Resource.HEAT,
            at=datetime(2019, 1, 1, tzinfo=UTC),
        )
    with pytest.raises(service.UnknownRegion):
        await service.price_at(
            session,
            region_code="RU-XXX",
            resource=Resource.HEAT,
            at=datetime(2026, 1, 1, tzinfo=UTC),
        )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10_000),
            st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999.9999"), places=4),
        ),
        min_size=1,
        max_size=6,
    ),
    probe_minutes=st.lists(st.integers(min_value=0, max_value=70_000), min_size=1, max_size=8),
)
async def test_price_at_always_picks_the_latest_start_not_after_the_moment(
    session: AsyncSession, steps: list[tuple[int, Decimal]], probe_minutes: list[int]
) -> None:
    origin = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3650)
    published: list[tuple[datetime, Decimal]] = []
    cursor = origin
    try:
        for gap, price in steps:
            cursor += timedelta(minutes=gap)
            request = TariffCreate(
                region="RU-SVE", resource=Resource.HEAT, price=price, valid_from=cursor
            )
            await service.add_tariff(session, request, actor_id=None)
            published.append((cursor, price))
        for minutes in probe_minutes:
            moment = origin + timedelta(minutes=minutes)
            expected = [p for start, p in published if start <= moment]
            quote = await service.price_at(
                session, region_code="RU-SVE", resource=Resource.HEAT, at=moment
            )
            if expected:
                assert quote.price == expected[-1]
            else:
                assert quote.price == Decimal("2.3100")  # the seeded July 2025 price
    finally:
        await session.rollback()

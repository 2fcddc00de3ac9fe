"""A household with a day of use across a tariff change, for the cost and settlement tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.households.models import Household
from mornet.resources import Resource
from mornet.runtime import Runtime
from mornet.tariffs.models import Region, Tariff
from tests.factories import user_with_token
from tests.telemetry.helpers import T0, plug, store_readings

CHANGE = T0 + timedelta(minutes=30)
OPENED = datetime(2026, 11, 1, tzinfo=ZoneInfo("Europe/Moscow"))
"""The start of the day of use, for a household that settles from that day."""
"""Electricity goes from 5 to 8 RUB/kWh at 10:30 UTC on 1 November."""


@dataclass(frozen=True)
class UsedHousehold:
    id: uuid.UUID
    headers: dict[str, str]
    owner_id: uuid.UUID
    owner_email: str
    region: str


async def region_with_a_change(session: AsyncSession) -> str:
    """A region whose electricity goes from 5 to 8 RUB/kWh at `CHANGE` (water: 40 RUB/m³)."""
    code = f"RU-{uuid.uuid4().hex[:3].upper()}"
    session.add(Region(code=code, name="Test", timezone="Europe/Moscow"))
    await session.flush()
    since = datetime(2026, 1, 1, tzinfo=UTC)
    session.add_all(
        [
            Tariff(
                region_code=code, resource=Resource.ELECTRICITY, price=Decimal(5), valid_from=since
            ),
            Tariff(
                region_code=code, resource=Resource.ELECTRICITY, price=Decimal(8), valid_from=CHANGE
            ),
            Tariff(region_code=code, resource=Resource.WATER, price=Decimal(40), valid_from=since),
        ]
    )
    await session.commit()
    return code


async def household_with_use(
    client: httpx.AsyncClient,
    session: AsyncSession,
    runtime: Runtime,
    *,
    opened: datetime | None = None,
) -> UsedHousehold:
    """A household in `region_with_a_change` that used 0.25 kWh in the hour from 10:00 and
    0.5 kWh in the hour from 11:00 (UTC) on 1 November: 0.125 at 5 and 0.625 at 8. Opened
    `opened` (for settlement: its first period is the one containing it), else now."""
    region = await region_with_a_change(session)
    user, headers = await user_with_token(client, session)
    owner_id, owner_email = user.id, user.email
    made = await client.post(
        "/api/households", json={"name": "Home", "address": "A", "region": region}, headers=headers
    )
    assert made.status_code == 201, made.text
    household_id = uuid.UUID(made.json()["id"])
    if opened is not None:
        await session.execute(
            update(Household).where(Household.id == household_id).values(created_at=opened)
        )
        await session.commit()
    await store_readings(
        runtime, household_id, [plug(0, 1000.0), plug(30, 1250.0), plug(90, 1750.0)]
    )
    return UsedHousehold(household_id, headers, owner_id, owner_email, region)

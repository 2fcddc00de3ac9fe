"""The household dashboard: power now, use today and this month, this month's cost, the
wallet, and how long prepaid units last at the trailing week's average use — own households
only."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.db import utcnow
from mornet.runtime import Runtime
from tests.cost.helpers import region_with_a_change
from tests.factories import user_with_token
from tests.market.helpers import give, trader
from tests.telemetry.helpers import T0, plug, store_readings


async def test_the_dashboard_shows_own_households_wallet_and_prepaid_days(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)  # electricity at 8 RUB/kWh now
    owner = await trader(client, session, region)
    now = utcnow()
    minutes = int((now - T0).total_seconds() // 60)
    # 0.7 kWh in the last three minutes (a plug's counter from 1000 to 1700 Wh).
    await store_readings(
        runtime,
        owner.household_id,
        [plug(1, 1000.0, minutes=minutes - 3), plug(2, 1700.0, minutes=minutes - 1)],
    )
    await give(runtime, chain, str(owner.user_id), E="7")

    answer = await client.get("/api/dashboard", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [home] = body["households"]
    assert (home["household_id"], home["region"], Decimal(home["power_w"])) == (
        str(owner.household_id),
        region,
        100,
    )
    used_at = T0 + timedelta(minutes=minutes - 1)
    midnight = now.astimezone(ZoneInfo("Europe/Moscow")).replace(hour=0, minute=0, second=0)
    if used_at.replace(minute=0, second=0, microsecond=0) >= midnight:  # not just past midnight
        assert Decimal(home["today"]["E"]) == Decimal("0.7")
        assert Decimal(home["month"]["E"]) == Decimal("0.7")
        assert Decimal(home["month_cost"]["total"]) == Decimal("5.60")  # 0.7 kWh at 8
    assert Decimal(home["daily_average"]["E"]) == Decimal("0.1")
    wallet = body["wallet"]
    assert Decimal(wallet["available"]["E"]) == 7
    assert Decimal(wallet["prepaid_days_left"]["E"]) == 70  # 7 kWh at 0.1 kWh a day
    assert wallet["prepaid_days_left"]["W"] is None  # no water used: nothing to divide by
    assert [(t["kind"], t["token"], Decimal(t["amount"])) for t in body["transactions"]] == [
        ("mint", "E", 7)
    ]

    from tests.web.test_pages import page_login

    await page_login(client, owner.email)
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert '<strong data-days="E">70.0 days</strong>' in page.text
    assert f'href="/households/{owner.household_id}"' in page.text
    client.cookies.clear()

    _, stranger = await user_with_token(client, session)
    theirs = (await client.get("/api/dashboard", headers=stranger)).json()
    assert theirs["households"] == []
    assert str(owner.household_id) not in str(theirs)
    assert (await client.get("/api/dashboard")).status_code == 401
    assert uuid.UUID(home["household_id"]) == owner.household_id


async def test_a_household_in_a_region_without_a_price_yet_still_has_its_dashboard(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from mornet.tariffs import service as tariffs

    code = f"RU-{uuid.uuid4().hex[:3].upper()}"
    await tariffs.create_region(session, code=code, name="New", timezone="Asia/Yekaterinburg")
    await session.commit()
    owner = await trader(client, session, code)
    board = await client.get("/api/dashboard", headers=owner.headers)
    assert board.status_code == 200, board.text
    [home] = board.json()["households"]
    assert home["month_cost"] == {"total": "0"}

"""The operators' summary: counts, use, GCC by where it is (read from the chain), deposits,
withdrawals and trades."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.db import utcnow
from mornet.runtime import Runtime
from tests.cost.helpers import region_with_a_change
from tests.factories import user_with_token
from tests.market.helpers import give, settle, trader
from tests.polling import eventually
from tests.telemetry.helpers import T0, plug, store_readings


async def _true(condition: bool) -> bool:
    return condition


async def test_the_summary_counts_the_platform_and_reads_gcc_from_the_chain(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    buyer = await trader(client, session, region)
    minutes = int((utcnow() - T0).total_seconds() // 60)
    await store_readings(
        runtime,
        seller.household_id,
        [plug(1, 1000.0, minutes=minutes - 3), plug(2, 1500.0, minutes=minutes - 1)],
    )
    await give(runtime, chain, str(seller.user_id), E="5")
    await give(runtime, chain, str(buyer.user_id), GCC="100")
    bought = await client.post(
        "/api/market/purchases",
        json={
            "household_id": str(buyer.household_id),
            "resource": "E",
            "quantity": "2.5",
            "idempotency_key": str(uuid.uuid4()),
        },
        headers=buyer.headers,
    )
    assert bought.status_code == 201, bought.text
    for who, side, price in ((seller, "sell", "7"), (buyer, "buy", "7")):
        placed = await client.post(
            "/api/market/orders",
            json={
                "region": region,
                "resource": "E",
                "side": side,
                "price": price,
                "quantity": "2",
                "idempotency_key": str(uuid.uuid4()),
            },
            headers=who.headers,
        )
        assert placed.status_code == 201, placed.text
    await settle(runtime, chain)

    operator, admin = await user_with_token(client, session, admin=True)
    await runtime.refresh_analytics()  # as the running platform does every minute
    url = "/api/admin/analytics/summary"
    assert (await client.get(url, headers=buyer.headers)).status_code == 403
    answer = await client.get(url, headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["users"] >= 3
    assert body["households"]["total"] >= 2
    assert body["households"]["with_agents"] == 0
    assert Decimal(body["consumption"]["E"]["last_30_days"]) >= Decimal("0.5")
    gcc = {k: (v if k == "source" else Decimal(v)) for k, v in body["gcc"].items()}
    assert gcc["source"] == "chain"
    assert gcc["total_supply"] == Decimal(await chain.total_supply("GCC")) / 10**18
    assert gcc["in_market_reserve"] >= 20  # the purchase: 2.5 kWh at 8
    assert gcc["in_wallets"] == (
        gcc["total_supply"] - gcc["in_treasury"] - gcc["in_market_reserve"] - gcc["held"]
    )
    assert (body["trades"]["count"], Decimal(body["trades"]["volume"])) == (1, 14)
    assert body["deposits"] == {"count": 0, "amount": "0"}
    assert operator.id != seller.user_id

    from tests.web.test_pages import page_login

    await page_login(client, buyer.email)
    assert (await client.get("/admin/analytics")).status_code == 403
    client.cookies.clear()
    await page_login(client, operator.email)
    page = await client.get("/admin/analytics")
    assert page.status_code == 200
    assert '<span class="value" id="trades">1</span><small>14.00000 GCC</small>' in page.text


async def test_the_summary_and_series_are_kept_until_a_source_moves(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Asked again with nothing changed, the summary and a series are answered from the
    process's cache (no statement reaches the database); a write to one of their sources
    shows at once."""
    changes = runtime.changes
    assert changes is not None
    await changes.start()  # as the API does (PostgreSQL: until it listens, nothing is kept)
    await eventually(lambda: _true(changes.version("probe") is not None), within=10)
    _, admin = await user_with_token(client, session, admin=True)
    summary = "/api/admin/analytics/summary"
    now = utcnow()
    start, end = (now - timedelta(hours=2)).isoformat(), (now + timedelta(hours=1)).isoformat()
    series = (
        f"/api/admin/analytics/series?metric=registrations&granularity=hour&from={start}&to={end}"
    ).replace("+00:00", "Z")
    await runtime.refresh_analytics()
    first = (await client.get(summary, headers=admin)).json()
    registered = sum(
        Decimal(p["value"]) for p in (await client.get(series, headers=admin)).json()["points"]
    )

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        again = (await client.get(summary, headers=admin)).json()
        kept = (await client.get(series, headers=admin)).json()
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
    assert again == first
    assert sum(Decimal(p["value"]) for p in kept["points"]) == registered
    assert not [s for s in statements if "analytics" in s or "users" in s or "treasur" in s], (
        statements
    )

    await user_with_token(client, session)  # a new user: the users table moves
    await runtime.refresh_analytics()  # and the registrations series with it
    assert (await client.get(summary, headers=admin)).json()["users"] == first["users"] + 1
    moved = (await client.get(series, headers=admin)).json()
    assert sum(Decimal(p["value"]) for p in moved["points"]) == registered + 1

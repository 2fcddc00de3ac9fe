"""The event log (fed by the events contexts publish, append-only) and the series (hourly
projections of the sources, rebuildable), against the figures the sources give."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.analytics import repository as analytics_repository
from mornet.analytics import service as analytics
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work, utcnow
from mornet.resources import Resource
from mornet.runtime import Runtime
from mornet.telemetry import service as telemetry
from tests.bank.flows import paid_deposit
from tests.factories import create_household, user_with_token
from tests.telemetry.helpers import T0, plug, store_readings
from tests.test_graphql import gql
from tests.web.test_pages import page_login


@pytest.fixture
async def platform(runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient) -> Runtime:
    await runtime.start_events(run_relay=False)
    return runtime


async def _logged(runtime: Runtime) -> None:
    assert runtime.relay is not None
    await runtime.relay.drain()


async def test_operator_actions_and_notable_events_are_logged_with_who_and_what(
    platform: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    operator, admin = await user_with_token(client, session, admin=True)
    member, member_headers = await user_with_token(client, session)
    for blocked in (True, False):
        action = "block" if blocked else "unblock"
        changed = await client.post(f"/api/admin/users/{member.id}/{action}", headers=admin)
        assert changed.status_code == 200, changed.text
    put = await client.put("/api/admin/parameters/gcm_rate", json={"value": "2"}, headers=admin)
    assert put.status_code == 200
    minted = await client.post(
        "/api/token/mint",
        json={"token": "E", "account": member.email, "amount": "3", "idempotency_key": "adj-1"},
        headers=admin,
    )
    assert minted.status_code == 202
    await paid_deposit(platform, chain, client, member_headers, "500")
    await _logged(platform)

    log = (await client.get("/api/admin/events?limit=200", headers=admin)).json()
    kinds = [e["kind"] for e in log["items"]]
    for kind in (
        "identity.user.registered",
        "identity.user.block_changed",
        "treasury.parameter.set",
        "tokens.adjusted",
        "bank.deposit.confirmed",
    ):
        assert kind in kinds, kind
    by_operator = [e for e in log["items"] if e["actor_id"] == str(operator.id)]
    assert {e["kind"] for e in by_operator} == {
        "identity.user.block_changed",
        "treasury.parameter.set",
        "tokens.adjusted",
    }
    assert all(e["actor_email"] == operator.email for e in by_operator)
    blocks = [e for e in by_operator if e["kind"] == "identity.user.block_changed"]
    assert [e["summary"] for e in blocks] == ["unblocked an account", "blocked an account"]
    assert blocks[0]["link"] == f"/admin/users/{member.id}"
    deposit = next(e for e in log["items"] if e["kind"] == "bank.deposit.confirmed")
    assert Decimal(deposit["amount"]) == 500
    assert deposit["actor_id"] is None  # the platform's event, not an operator's
    # Newest first, filters by kind family and by actor.
    times = [e["occurred_at"] for e in log["items"]]
    assert times == sorted(times, reverse=True)
    bank_only = (await client.get("/api/admin/events?kind=bank", headers=admin)).json()
    assert {e["kind"] for e in bank_only["items"]} == {"bank.deposit.confirmed"}
    mine = (await client.get(f"/api/admin/events?actor={operator.id}", headers=admin)).json()
    assert mine["total"] == 4
    # A relayed event delivered again is not logged twice.
    async with platform.sessions() as fresh:
        total = (
            await analytics.events(
                fresh, kind=None, actor_id=None, start=None, end=None, page=analytics.PageRequest()
            )
        )[1]
    await _logged(platform)
    assert (await client.get("/api/admin/events", headers=admin)).json()["total"] == total
    # Plain users see none of it.
    assert (await client.get("/api/admin/events", headers=member_headers)).status_code == 403


async def test_no_one_can_change_or_remove_a_logged_event(
    platform: Runtime, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await user_with_token(client, session)
    await _logged(platform)
    for statement in (
        "UPDATE analytics_events SET summary = 'nothing happened'",
        "DELETE FROM analytics_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with unit_of_work(platform.sessions) as tx:
                await tx.execute(text(statement))
    async with platform.sessions() as fresh:
        count = await fresh.scalar(text("SELECT count(*) FROM analytics_events"))
    assert count == 1


async def test_series_equal_the_sources_and_a_rebuild_gives_the_same_points(
    platform: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    member, member_headers = await user_with_token(client, session)
    home = await create_household(session, owner=member)
    await store_readings(
        platform,
        home.id,
        [plug(1, 1000.0), plug(30, 1400.0), plug(70, 2300.0), plug(200, 2400.0)],
    )
    await paid_deposit(platform, chain, client, member_headers, "250")
    await _logged(platform)
    async with unit_of_work(platform.sessions) as tx:
        stored = await analytics.rebuild(tx, chain)
    assert stored > 0
    async with platform.sessions() as fresh:
        first = await analytics_repository.all_points(fresh)

    def series(metric: str, granularity: str, start: str, end: str) -> str:
        return (
            f"/api/admin/analytics/series?metric={metric}&granularity={granularity}"
            f"&from={start}&to={end}"
        )

    day = T0.replace(hour=0).isoformat().replace("+00:00", "Z")
    next_day = (T0.replace(hour=0) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    hourly = (
        await client.get(series("consumption_e", "hour", day, next_day), headers=admin)
    ).json()
    assert hourly["unit"] == "kWh"
    assert len(hourly["points"]) == 24  # every bucket, 0 where nothing happened
    async with platform.sessions() as fresh:
        source = await telemetry.billed_use_by_hour(
            fresh, T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1)
        )
    by_hour = {p["t"]: Decimal(p["value"]) for p in hourly["points"]}
    assert sum(by_hour.values()) == sum(q for _, r, q in source if r == Resource.ELECTRICITY)
    assert sum(by_hour.values()) == Decimal("1.4")  # 2.4 kWh counter less 1.0
    daily = (await client.get(series("consumption_e", "day", day, next_day), headers=admin)).json()
    assert [Decimal(p["value"]) for p in daily["points"]] == [Decimal("1.4")]

    now = utcnow()
    start = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    end = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    deposits = (await client.get(series("deposits", "hour", start, end), headers=admin)).json()
    assert sum(Decimal(p["value"]) for p in deposits["points"]) == 250
    supply = (await client.get(series("gcc_supply", "hour", start, end), headers=admin)).json()
    assert (
        Decimal(supply["points"][-1]["value"]) == Decimal(await chain.total_supply("GCC")) / 10**18
    )
    reserves = (await client.get(series("reserves", "day", start, end), headers=admin)).json()
    assert Decimal(reserves["points"][-1]["value"]) == 250

    # A rebuild from scratch gives the same points; so does refreshing what is there.
    async with unit_of_work(platform.sessions) as tx:
        await analytics.rebuild(tx, chain)
    assert await platform.refresh_analytics(hours=48) >= 1
    async with platform.sessions() as fresh:
        assert await analytics_repository.all_points(fresh) == first

    for bad in (
        series("no_such", "hour", start, end),
        series("deposits", "week", start, end),
        series("deposits", "hour", end, start),
        series("deposits", "hour", "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"),
    ):
        refused = await client.get(bad, headers=admin)
        assert refused.status_code == 422, bad
    assert (
        await client.get(series("deposits", "hour", start, end), headers=member_headers)
    ).status_code == 403

    body = await gql(
        client,
        'query($from: DateTime!, $to: DateTime!) { series(metric: "deposits", from: $from, '
        'to: $to) { unit points { value } } events(kind: "bank") { kind amount } }',
        admin,
        **{"from": start, "to": end},
    )
    assert body["data"]["series"]["unit"] == "RUB"
    assert body["data"]["events"] == [{"kind": "bank.deposit.confirmed", "amount": "250.00"}]


async def test_the_admin_dashboard_draws_the_series_and_lists_the_log(
    platform: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    operator, _ = await user_with_token(client, session, admin=True)
    member, member_headers = await user_with_token(client, session)
    await paid_deposit(platform, chain, client, member_headers, "120")
    await _logged(platform)
    await platform.refresh_analytics()
    await page_login(client, operator.email)
    landing = await client.get("/admin")
    assert landing.headers["location"] == "/admin/analytics"
    for span in ("24h", "7d", "30d", "90d"):
        page = await client.get(f"/admin/analytics?range={span}")
        assert page.status_code == 200
        assert page.text.count("<polyline") == 7
        assert 'data-series="Deposits"' in page.text
        assert "Deposits: 120<" in page.text  # a line is named at its end, not by colour only
    assert 'hx-trigger="every 5s"' in page.text
    log = await client.get("/admin/events?kind=bank")
    assert "deposit of 120.00 RUB confirmed by the bank" in log.text
    client.cookies.clear()
    await page_login(client, member.email)
    assert (await client.get("/admin/events")).status_code == 403
    assert uuid.UUID(str(member.id))

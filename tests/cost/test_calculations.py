"""Cost calculations over the API: a household's hourly use priced at its region's tariffs,
split where a tariff changes, stored, and visible to its owner (and admins) only."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.cost.rating import PricePeriod, Use, rate
from mornet.resources import Resource
from mornet.runtime import Runtime
from mornet.tariffs import service as tariffs
from tests.cost.helpers import household_with_use
from tests.factories import user_with_token
from tests.telemetry.helpers import T0, plug, store_readings


def _period(start: datetime, end: datetime) -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat()}


DAY = _period(T0 - timedelta(hours=10), T0 + timedelta(hours=14))


async def test_use_across_a_tariff_change_is_split_priced_and_stored(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    used = await household_with_use(client, session, runtime)
    headers, household_id = used.headers, str(used.id)
    made = await client.post(
        "/api/cost/calculate", json={"household_id": household_id, **DAY}, headers=headers
    )
    assert made.status_code == 201, made.text
    calculation: dict[str, Any] = made.json()
    assert (calculation["currency"], calculation["plugin"]) == ("RUB", "residential")
    [line] = calculation["lines"]
    assert (line["resource"], line["unit"], Decimal(line["quantity"])) == (
        "E",
        "kWh",
        Decimal("0.75"),
    )
    assert [
        (s["from"], s["to"], Decimal(s["quantity"]), Decimal(s["price"])) for s in line["segments"]
    ] == [
        ("2026-11-01T10:00:00Z", "2026-11-01T10:30:00Z", Decimal("0.125"), Decimal(5)),
        ("2026-11-01T10:30:00Z", "2026-11-01T12:00:00Z", Decimal("0.625"), Decimal(8)),
    ]
    # 0.125 kWh at 5 and 0.625 kWh at 8 = 5.625, rounded half-up once: 5.63.
    assert Decimal(line["cost"]) == Decimal("5.63")
    costs = [Decimal(calculation[k]) for k in ("cost_e", "cost_h", "cost_w", "cost_total")]
    assert costs == [Decimal("5.63"), 0, 0, Decimal("5.63")]

    again = await client.get(f"/api/cost/calculations/{calculation['id']}", headers=headers)
    assert again.json() == calculation
    listed = await client.get(
        "/api/cost/calculations", params={"household_id": household_id}, headers=headers
    )
    assert [c["id"] for c in listed.json()["items"]] == [calculation["id"]]


async def test_calculations_are_private_and_periods_are_checked(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    used = await household_with_use(client, session, runtime)
    headers, household_id = used.headers, str(used.id)
    _, intruder = await user_with_token(client, session)
    mine = (
        await client.post(
            "/api/cost/calculate", json={"household_id": household_id, **DAY}, headers=headers
        )
    ).json()

    foreign = await client.post(
        "/api/cost/calculate", json={"household_id": household_id, **DAY}, headers=intruder
    )
    assert foreign.status_code == 404
    assert (
        await client.get(f"/api/cost/calculations/{mine['id']}", headers=intruder)
    ).status_code == 404
    listed = await client.get(
        "/api/cost/calculations", params={"household_id": household_id}, headers=intruder
    )
    assert listed.status_code == 404

    reversed_period = _period(T0, T0 - timedelta(hours=1))
    long_period = _period(T0 - timedelta(days=367), T0)
    for period in (reversed_period, long_period):
        refused = await client.post(
            "/api/cost/calculate", json={"household_id": household_id, **period}, headers=headers
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "bad_period")

    quiet = await client.post(
        "/api/cost/calculate",
        json={
            "household_id": household_id,
            **_period(T0 - timedelta(days=3), T0 - timedelta(days=2)),
        },
        headers=headers,
    )
    assert quiet.status_code == 201
    assert (quiet.json()["lines"], Decimal(quiet.json()["cost_total"])) == ([], 0)


async def test_graphql_calculate_cost_and_cost_calculations(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    from tests.test_graphql import error_codes, gql

    used = await household_with_use(client, session, runtime)
    headers, household_id = used.headers, str(used.id)
    _, intruder = await user_with_token(client, session)
    mutation = """mutation($h: UUID!, $from: DateTime!, $to: DateTime!) {
        calculateCost(householdId: $h, from: $from, to: $to) { id costE costTotal lines } }"""
    made = await gql(client, mutation, headers, h=household_id, **DAY)
    assert "errors" not in made, made
    calculation = made["data"]["calculateCost"]
    assert Decimal(calculation["costTotal"]) == Decimal("5.63")
    assert calculation["lines"][0]["segments"][1]["price"] == "8.0000"
    listed = await gql(
        client,
        "query($h: UUID!) { costCalculations(householdId: $h) { id } }",
        headers,
        h=household_id,
    )
    assert listed["data"]["costCalculations"] == [{"id": calculation["id"]}]
    stolen = await gql(client, mutation, intruder, h=household_id, **DAY)
    assert error_codes(stolen) == ["household_not_found"]


async def test_a_period_no_tariff_change_cuts_is_priced_from_its_totals_as_hour_by_hour(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    """2 November has no tariff change: the database sums the day (idle hours included) and
    the line is the one hour-by-hour rating would give."""
    used = await household_with_use(client, session, runtime)
    day = T0 + timedelta(days=1)  # 10:00 UTC on 2 November
    await store_readings(
        runtime,
        used.id,
        [plug(3000, 1850.0, minutes=1470), plug(3001, 2100.0, minutes=1590)],
    )  # 0.1 kWh by 10:30, 0.25 more by 12:30 (an idle hour between, at 11:00)
    made = await client.post(
        "/api/cost/calculate",
        json={
            "household_id": str(used.id),
            **_period(day - timedelta(hours=10), day + timedelta(hours=14)),
        },
        headers=used.headers,
    )
    assert made.status_code == 201, made.text
    [line] = made.json()["lines"]
    hourly = [
        Use(day, day + timedelta(hours=1), Decimal("0.1")),
        Use(day + timedelta(hours=2), day + timedelta(hours=3), Decimal("0.25")),
    ]
    history = await tariffs.tariff_history(session, used.region, Resource.ELECTRICITY)
    timeline = sorted(
        (PricePeriod(q.valid_from, q.price, q.id) for q in history), key=lambda p: p.start
    )
    expected = rate(Resource.ELECTRICITY, hourly, timeline)
    assert Decimal(line["quantity"]) == expected.quantity == Decimal("0.35")
    assert Decimal(line["cost"]) == expected.cost == Decimal("2.80")
    stored = [
        (datetime.fromisoformat(s["from"]), datetime.fromisoformat(s["to"]), Decimal(s["quantity"]))
        for s in line["segments"]
    ]
    assert stored == [(s.start, s.end, s.quantity) for s in expected.segments]
    assert stored == [(day, day + timedelta(hours=3), Decimal("0.35"))]

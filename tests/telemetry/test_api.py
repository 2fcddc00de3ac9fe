"""Readings, consumption and meter entries over the API: owner or admin only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.identity import service as identity
from mornet.resources import Resource
from mornet.runtime import Runtime
from tests.factories import user_with_token
from tests.telemetry.helpers import T0, plug, provision, store_readings

WINDOW = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(days=2)).isoformat()}


async def test_readings_and_consumption_for_the_owner(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    readings = [plug(0, 1000.0), plug(30, 1250.0), plug(90, 1750.0)]
    await store_readings(runtime, agent.household_id, readings)
    hid = agent.household_id

    readings = await client.get(f"/api/households/{hid}/readings", params=WINDOW, headers=headers)
    assert readings.status_code == 200
    assert [(r["device_id"], r["seq"], r["counter"]) for r in readings.json()] == [
        ("plug-1", 0, "1.000000"),
        ("plug-1", 30, "1.250000"),
        ("plug-1", 90, "1.750000"),
    ]
    only = await client.get(
        f"/api/households/{hid}/readings", params={**WINDOW, "device_id": "nope"}, headers=headers
    )
    assert only.json() == []

    hourly = await client.get(f"/api/households/{hid}/consumption", params=WINDOW, headers=headers)
    assert [(p["start"], p["quantity"], p["unit"]) for p in hourly.json()] == [
        ("2026-11-01T10:00:00Z", "0.250000", "kWh"),
        ("2026-11-01T11:00:00Z", "0.500000", "kWh"),
    ]
    daily = await client.get(
        f"/api/households/{hid}/consumption",
        params={**WINDOW, "granularity": "day"},
        headers=headers,
    )
    # Moscow days: both hours fall on 1 November local time.
    assert [(p["start"], p["quantity"]) for p in daily.json()] == [
        ("2026-11-01T00:00:00+03:00", "0.750000")
    ]


async def test_meter_readings_enter_the_same_pipeline(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    hid = agent.household_id
    for hours, value in ((0, "100.125"), (5, "100.725")):
        response = await client.post(
            f"/api/households/{hid}/meter-readings",
            json={"resource": "W", "value": value, "ts": (T0 + timedelta(hours=hours)).isoformat()},
            headers=headers,
        )
        assert response.status_code == 201
        assert response.json() == {"stored": 1, "duplicate": 0}
    again = await client.post(
        f"/api/households/{hid}/meter-readings",
        json={"resource": "W", "value": "100.725", "ts": (T0 + timedelta(hours=5)).isoformat()},
        headers=headers,
    )
    assert again.json() == {"stored": 0, "duplicate": 1}
    use = await client.get(
        f"/api/households/{hid}/consumption", params={**WINDOW, "resource": "W"}, headers=headers
    )
    assert [(p["quantity"], p["unit"]) for p in use.json()] == [("0.600000", "m3")]
    for bad in (
        {"resource": "G", "value": "1"},
        {"resource": "W", "value": "-1"},
        {"resource": "W", "value": "1", "ts": "2999-01-01T00:00:00Z"},
    ):
        refused = await client.post(
            f"/api/households/{hid}/meter-readings", json=bad, headers=headers
        )
        assert refused.status_code == 422, bad


async def test_an_impossible_meter_step_is_refused_with_the_reason(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Found by the OpenAPI contract run: a meter index far beyond what a household can use
    since its previous one was a 500; it is the household's input, so a 422 that says why."""
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    hid = agent.household_id
    first = await client.post(
        f"/api/households/{hid}/meter-readings",
        json={"resource": "W", "value": "10", "ts": T0.isoformat()},
        headers=headers,
    )
    assert first.status_code == 201
    jump = await client.post(
        f"/api/households/{hid}/meter-readings",
        json={"resource": "W", "value": 9421630, "ts": (T0 + timedelta(minutes=1)).isoformat()},
        headers=headers,
    )
    assert jump.status_code == 422
    assert jump.json()["error"]["code"] == "implausible_meter_step"
    assert "exceeds the physical bound" in jump.json()["error"]["message"]
    readings = await client.get(f"/api/households/{hid}/readings", params=WINDOW, headers=headers)
    assert [r["counter"] for r in readings.json()] == ["10.000000"]


async def test_another_users_telemetry_is_unreachable(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    _, owner = await user_with_token(client, session)
    _, intruder = await user_with_token(client, session)
    _, admin = await user_with_token(client, session, admin=True)
    agent = await provision(client, owner)
    await store_readings(runtime, agent.household_id, [plug(0, 1000.0), plug(30, 1100.0)])
    hid = agent.household_id
    for method, path, body in [
        ("GET", f"/api/households/{hid}/readings", None),
        ("GET", f"/api/households/{hid}/consumption", None),
        ("POST", f"/api/households/{hid}/meter-readings", {"resource": "W", "value": "5"}),
    ]:
        response = await client.request(method, path, params=WINDOW, json=body, headers=intruder)
        assert response.status_code == 404, path
    seen_by_admin = await client.get(
        f"/api/households/{hid}/readings", params=WINDOW, headers=admin
    )
    assert len(seen_by_admin.json()) == 2
    assert (await client.get("/api/admin/telemetry/dead-letters", headers=owner)).status_code == 403


async def test_operators_see_dead_letters_with_reasons(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    from mornet.bus import InProcessBus
    from mornet.telemetry.consumers import Gateway

    _, admin = await user_with_token(client, session, admin=True)
    gateway = Gateway(runtime.sessions, InProcessBus())
    assert not await gateway.handle("mornet/x/telemetry", b"{broken")
    letters = (await client.get("/api/admin/telemetry/dead-letters", headers=admin)).json()
    assert len(letters) == 1
    assert "not JSON" in letters[0]["reason"]
    assert letters[0]["payload_preview"] == "{broken"
    assert letters[0]["topic"] == "mornet/x/telemetry"


async def test_a_main_meter_is_billed_and_the_plugs_only_inform(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    """A household with plugs and a main electricity meter: the meter's use is what counts, so
    nothing is billed twice; before the first index, the plugs are billed."""
    from tests.web.test_pages import page_login

    user, headers = await user_with_token(client, session)
    email, user_id = user.email, user.id
    agent = await provision(client, headers)
    hid = agent.household_id
    await store_readings(runtime, hid, [plug(0, 1000.0), plug(30, 1250.0), plug(90, 1750.0)])
    params = {**WINDOW, "resource": "E"}
    plugs = await client.get(f"/api/households/{hid}/consumption", params=params, headers=headers)
    assert [p["quantity"] for p in plugs.json()] == ["0.250000", "0.500000"]

    for minutes, index in ((0, "5000.000"), (120, "5002.000")):
        moment = (T0 + timedelta(minutes=minutes)).isoformat()
        entered = await client.post(
            f"/api/households/{hid}/meter-readings",
            json={"resource": "E", "value": index, "ts": moment},
            headers=headers,
        )
        assert entered.status_code == 201, entered.text
    meter = await client.get(f"/api/households/{hid}/consumption", params=params, headers=headers)
    assert [(p["start"], p["quantity"]) for p in meter.json()] == [
        ("2026-11-01T12:00:00Z", "2.000000")
    ]
    priced = await client.post(
        "/api/cost/calculate",
        json={"household_id": hid, **WINDOW},
        headers=headers,
    )
    assert priced.status_code == 201, priced.text
    assert [(line["resource"], line["quantity"]) for line in priced.json()["lines"]] == [
        ("E", "2.000000")
    ]
    await page_login(client, email)
    page = await client.get(f"/households/{hid}")
    assert "Electricity — the main meter" in page.text
    assert "Water — the plugs" in page.text
    # This month so far (as of the afternoon of the readings), as billed: the meter's 2 kWh.
    from mornet.cost import service as cost

    owner = await identity.get_user(session, user_id)
    _, month = await cost.month_so_far(
        session, actor=owner, household_id=uuid.UUID(hid), now=T0 + timedelta(hours=5)
    )
    assert [(line.resource, line.quantity) for line in month] == [(Resource.ELECTRICITY, 2)]

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.tariffs.models import Region, Tariff
from tests.factories import user_with_token


async def _count_tariffs(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Tariff)) or 0)


async def test_sample_regions_are_seeded_and_labelled(client: httpx.AsyncClient) -> None:
    regions = (await client.get("/api/regions")).json()
    codes = [r["code"] for r in regions]
    assert {"RU-MOW", "RU-SPE", "RU-NVS"} <= set(codes)
    assert all(r["is_sample"] for r in regions)


async def test_current_tariffs_of_a_region(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tariffs/RU-MOW")
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == "RU-MOW"
    assert [
        (t["resource"], t["price"], t["unit"], t["currency"], t["valid_from"])
        for t in body["tariffs"]
    ] == [
        ("E", "8.1600", "kWh", "RUB", "2025-06-30T21:00:00Z"),
        ("H", "3.0800", "kWh", "RUB", "2025-06-30T21:00:00Z"),
        ("W", "63.9300", "m3", "RUB", "2025-06-30T21:00:00Z"),
    ]
    assert all(t["is_sample"] for t in body["tariffs"])


async def test_tariffs_at_a_past_moment_use_the_price_then_in_force(
    client: httpx.AsyncClient,
) -> None:
    spring = await client.get("/api/tariffs/ru-mow", params={"at": "2025-03-15T12:00:00+03:00"})
    assert [t["price"] for t in spring.json()["tariffs"]] == ["6.9900", "2.6500", "55.6000"]
    # One second before Moscow's 1 July midnight, the January price still applies.
    edge = await client.get("/api/tariffs/RU-MOW", params={"at": "2025-06-30T23:59:59+03:00"})
    assert edge.json()["tariffs"][0]["price"] == "6.9900"
    switched = await client.get("/api/tariffs/RU-MOW", params={"at": "2025-07-01T00:00:00+03:00"})
    assert switched.json()["tariffs"][0]["price"] == "8.1600"
    before_any = await client.get("/api/tariffs/RU-MOW", params={"at": "2020-01-01T00:00:00Z"})
    assert before_any.status_code == 200
    assert before_any.json()["tariffs"] == []


async def test_bad_region_and_bad_time_are_clear_errors(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/api/tariffs/XX-YY")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_region"
    naive = await client.get("/api/tariffs/RU-MOW", params={"at": "2025-03-01T00:00:00"})
    assert naive.status_code == 422
    assert "at" in naive.json()["error"]["message"]


async def test_admin_adds_a_future_tariff_without_touching_history(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session, admin=True)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    response = await client.post(
        "/api/admin/tariffs",
        json={
            "region": "RU-MOW",
            "resource": "E",
            "price": "9.1250",
            "valid_from": starts.isoformat(),
            "note": "order 12-p",
        },
        headers=headers,
    )
    assert response.status_code == 201
    assert response.json()["price"] == "9.1250"
    assert response.json()["is_sample"] is False

    now = await client.get("/api/tariffs/RU-MOW")
    assert now.json()["tariffs"][0]["price"] == "8.1600"
    later = await client.get(
        "/api/tariffs/RU-MOW", params={"at": (starts + timedelta(seconds=1)).isoformat()}
    )
    assert [t["price"] for t in later.json()["tariffs"]] == ["9.1250", "3.0800", "63.9300"]
    history = await client.get("/api/tariffs/RU-MOW/history", params={"resource": "E"})
    assert [t["price"] for t in history.json()] == ["9.1250", "8.1600", "6.9900"]


async def test_tariff_rules_refuse_backdating_duplicates_and_bad_prices(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session, admin=True)
    before = await _count_tariffs(session)
    future = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    first = await client.post(
        "/api/admin/tariffs",
        json={"region": "RU-SPE", "resource": "W", "price": "50", "valid_from": future},
        headers=headers,
    )
    assert first.status_code == 201

    cases = [
        (
            {"region": "RU-SPE", "resource": "W", "price": "51", "valid_from": future},
            409,
            "tariff_not_after_latest",
        ),
        (
            {
                "region": "RU-SPE",
                "resource": "E",
                "price": "7",
                "valid_from": "2025-09-01T00:00:00Z",
            },
            422,
            "tariff_in_past",
        ),
        ({"region": "RU-SPE", "resource": "E", "price": "7.12345"}, 422, "validation_error"),
        ({"region": "RU-SPE", "resource": "E", "price": "-1"}, 422, "validation_error"),
        ({"region": "RU-SPE", "resource": "G", "price": "1"}, 422, "validation_error"),
        ({"region": "RU-XXX", "resource": "E", "price": "1"}, 404, "unknown_region"),
    ]
    for payload, status, code in cases:
        response = await client.post("/api/admin/tariffs", json=payload, headers=headers)
        assert response.status_code == status, payload
        assert response.json()["error"]["code"] == code, payload
    assert await _count_tariffs(session) == before + 1


async def test_only_admins_add_tariffs_or_regions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    before = await _count_tariffs(session)
    tariff = {"region": "RU-MOW", "resource": "E", "price": "1.00"}
    assert (await client.post("/api/admin/tariffs", json=tariff)).status_code == 401
    assert (
        await client.post("/api/admin/tariffs", json=tariff, headers=headers)
    ).status_code == 403
    region = {"code": "RU-KDA", "name": "Krasnodar Krai"}
    assert (
        await client.post("/api/admin/regions", json=region, headers=headers)
    ).status_code == 403
    assert await _count_tariffs(session) == before
    assert await session.get(Region, "RU-KDA") is None


async def test_admin_adds_a_region(client: httpx.AsyncClient, session: AsyncSession) -> None:
    _, headers = await user_with_token(client, session, admin=True)
    created = await client.post(
        "/api/admin/regions",
        json={"code": "ru-kda", "name": "Krasnodar Krai", "timezone": "Europe/Moscow"},
        headers=headers,
    )
    assert created.status_code == 201
    assert created.json() == {
        "code": "RU-KDA",
        "name": "Krasnodar Krai",
        "timezone": "Europe/Moscow",
        "is_sample": False,
    }
    again = await client.post(
        "/api/admin/regions", json={"code": "RU-KDA", "name": "X"}, headers=headers
    )
    assert again.status_code == 409
    bad_zone = await client.post(
        "/api/admin/regions",
        json={"code": "RU-ROS", "name": "Rostov", "timezone": "Mars/Olympus"},
        headers=headers,
    )
    assert bad_zone.status_code == 422
    assert (await client.get("/api/tariffs/RU-KDA")).json()["tariffs"] == []

"""`mornet bench analytics`: seeds N households with D days of hourly use, rebuilds the
series, then measures the operators' summary, a 30-day series and a household's dashboard
under concurrent clients against one `mornet up` process, beside its bare `/healthz` in the
same run (p50/p95 and requests per second)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from mornet.analytics import service as analytics
from mornet.bench.harness import (
    percentile,
    running_platform,
    scratch_directory,
    scratch_postgres,
    scratch_sqlite,
)
from mornet.db import create_engine, create_sessionmaker, unit_of_work
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.resources import Resource
from mornet.telemetry import service as telemetry
from mornet.tokens import service as tokens

ADMIN = ("bench-admin@example.org", "bench-admin-password")
OWNER = ("bench-owner@example.org", "bench-owner-password")
REGION = "RU-MOW"
HOURLY_USE = {Resource.ELECTRICITY: "0.5", Resource.HEAT: "1.2", Resource.WATER: "0.015"}
OWNERS = 100
ROWS_PER_STATEMENT = 20_000


async def _seed(url: str, *, count: int, days: int) -> dict[str, float]:
    """`count` households among `OWNERS` owners (the measured owner has one), each with
    `days` days of hourly E, H and W; then the series rebuilt from them."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    started = time.perf_counter()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first_hour = now - timedelta(days=days)
    try:
        async with unit_of_work(sessions) as session:
            owner = await identity.register(
                session, email=OWNER[0], password=OWNER[1], full_name="Bench owner"
            )
            others = [
                await identity.register(
                    session,
                    email=f"bench-{i}@example.org",
                    password=uuid.uuid4().hex,
                    full_name=f"Bench {i}",
                )
                for i in range(OWNERS - 1)
            ]
            household_ids = []
            for index in range(count):
                who = owner if index == 0 else others[index % len(others)]
                household = await households.create_household(
                    session,
                    owner=tokens.SystemActor(id=who.id, is_admin=False),
                    name=f"Bench {index}",
                    address="Bench street",
                    region_code=REGION,
                )
                household_ids.append(household.id)
        rows = 0
        use: dict[tuple[uuid.UUID, Resource, datetime], Decimal] = {}
        for household_id in household_ids:
            for hour in range(days * 24):
                for resource, quantity in HOURLY_USE.items():
                    use[(household_id, resource, first_hour + timedelta(hours=hour))] = Decimal(
                        quantity
                    )
            if len(use) >= ROWS_PER_STATEMENT:
                async with unit_of_work(sessions) as session:
                    await telemetry.import_hourly_use(session, use)
                rows += len(use)
                use = {}
        if use:
            async with unit_of_work(sessions) as session:
                await telemetry.import_hourly_use(session, use)
            rows += len(use)
        seeded = time.perf_counter()
        async with unit_of_work(sessions) as session:
            points = await analytics.rebuild(session, None)
        rebuilt = time.perf_counter()
    finally:
        await engine.dispose()
    return {
        "hourly_rows": rows,
        "seed_s": round(seeded - started, 1),
        "series_points": points,
        "rebuild_s": round(rebuilt - seeded, 1),
    }


async def _load(
    client: httpx.AsyncClient,
    path: str,
    headers: dict[str, str],
    *,
    clients: int,
    requests: int,
) -> dict[str, float]:
    """`requests` GETs of `path` from `clients` concurrent clients: p50/p95 latency and
    requests per second over the whole run. Every answer must be a 200."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            sent = time.perf_counter()
            answer = await client.get(path, headers=headers)
            latencies.append(time.perf_counter() - sent)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "per_s": round(requests / elapsed, 1),
    }


async def _measure(base: str, *, clients: int, requests: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def token(email: str, password: str) -> dict[str, str]:
            login = await client.post(
                "/api/auth/login", json={"email": email, "password": password}
            )
            login.raise_for_status()
            return {"Authorization": f"Bearer {login.json()['access_token']}"}

        admin, owner = await token(*ADMIN), await token(*OWNER)
        end = datetime.now(UTC)
        start = end - timedelta(days=30)
        series = (
            "/api/admin/analytics/series?metric=consumption_e&granularity=day"
            f"&from={start.isoformat().replace('+00:00', 'Z')}"
            f"&to={end.isoformat().replace('+00:00', 'Z')}"
        )
        paths = {
            "healthz": ("/healthz", {}),
            "summary": ("/api/admin/analytics/summary", admin),
            "series_30d": (series, admin),
            "dashboard": ("/api/dashboard", owner),
        }
        for path, headers in paths.values():  # warm up every route once
            await _load(client, path, headers, clients=1, requests=3)
        measured: dict[str, Any] = {
            name: await _load(client, path, headers, clients=clients, requests=requests)
            for name, (path, headers) in paths.items()
        }
    bare = measured["healthz"]["per_s"]
    for name in ("summary", "series_30d", "dashboard"):
        measured[name]["vs_healthz"] = round(measured[name]["per_s"] / bare, 2) if bare else 0.0
    measured["targets_met"] = all(
        measured[n]["p95_ms"] < 100 and measured[n]["vs_healthz"] >= 0.5
        for n in ("summary", "series_30d", "dashboard")
    )
    return measured


async def run_analytics_benchmark(
    *,
    households_count: int,
    days: int,
    clients: int,
    requests: int,
    postgres_url: str | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "analytics",
        "measured": "GETs from concurrent clients against one `mornet up` process: the "
        "operators' summary (figures read from its local chain), a 30-day daily series, one "
        "owner's dashboard, and the bare /healthz of the same process",
        "households": households_count,
        "days": days,
        "clients": clients,
        "requests_each": requests,
        "database": "postgresql" if postgres_url else "sqlite",
    }
    with scratch_directory() as scratch:
        if postgres_url:
            async with scratch_postgres(postgres_url, "mornet_bench_analytics") as url:
                result |= await _seed(url, count=households_count, days=days)
                with running_platform(
                    scratch, admin=ADMIN, env={"MORNET_DATABASE_URL": url}
                ) as base:
                    result |= await _measure(base, clients=clients, requests=requests)
        else:
            async with scratch_sqlite(scratch) as url:
                result |= await _seed(url, count=households_count, days=days)
                (scratch / "platform").mkdir()
                with running_platform(
                    scratch / "platform", admin=ADMIN, env={"MORNET_DATABASE_URL": url}
                ) as base:
                    result |= await _measure(base, clients=clients, requests=requests)
    return result

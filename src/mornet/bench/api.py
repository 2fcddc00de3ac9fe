"""`mornet bench api`: requests/s and p50/p99 of the bare `/healthz` and of the reads a
household makes most (`/api/me`, its households, one household, a region's tariffs, the wallet,
the dashboard) against one `mornet up` process, each beside `/healthz` of the same run.

The load comes from `wrk` (Debian's package): a C load generator on one thread with keep-alive
connections, which drives `/healthz` far past what one Python process serves, so the figures
are the platform's and not the client's."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from typing import Any

import httpx

from mornet.bench.harness import running_platform, scratch_directory, scratch_postgres

ADMIN = ("bench-api-admin@example.org", "bench-api-admin-password")
OWNER = ("bench-api-owner@example.org", "bench-api-owner-password")
REGION = "RU-MOW"
P99_TARGET_MS = 50.0
RATIO_TARGET = 0.5

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_FAILED = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors:.*")


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, p50 and p99 in ms from `wrk --latency`'s report; refuses a run in which
    any answer was not a 2xx/3xx or a socket failed."""
    failed = _FAILED.search(output)
    if failed is not None:
        raise RuntimeError(f"wrk saw failures: {failed.group(0)}\n{output}")
    rate = _RATE.search(output)
    percentiles = {q: float(v) * _UNITS_MS[unit] for q, v, unit in _PERCENTILE.findall(output)}
    if rate is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"wrk's report could not be read:\n{output}")
    return {
        "per_s": round(float(rate.group(1)), 1),
        "p50_ms": round(percentiles["50"], 2),
        "p99_ms": round(percentiles["99"], 2),
    }


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is missing: install Debian's 'wrk' package (apt-get install wrk)")
    return binary


async def _wrk(url: str, token: str | None, *, connections: int, seconds: int) -> dict[str, float]:
    args = [wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token is not None:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    done = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


async def _prepare(base: str) -> tuple[str, dict[str, str]]:
    """An owner with one household and its wallet; returns its token and the measured paths."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        registered = await client.post(
            "/api/auth/register",
            json={"email": OWNER[0], "password": OWNER[1], "full_name": "Bench owner"},
        )
        registered.raise_for_status()
        login = await client.post("/api/auth/login", json={"email": OWNER[0], "password": OWNER[1]})
        login.raise_for_status()
        token: str = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = await client.post(
            "/api/households",
            json={"name": "Bench flat", "address": "Bench street 1", "region": REGION},
            headers=headers,
        )
        created.raise_for_status()
        household = created.json()["id"]
        paths = {
            "healthz": "/healthz",
            "me": "/api/me",
            "households": "/api/households",
            "household": f"/api/households/{household}",
            "tariffs": f"/api/tariffs/{REGION}",
            "wallet": "/api/wallet",
            "dashboard": "/api/dashboard",
        }
        for path in paths.values():  # every route answers before it is measured
            answer = await client.get(path, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
    return token, paths


async def _measure(base: str, *, connections: int, seconds: int) -> dict[str, Any]:
    token, paths = await _prepare(base)
    routes: dict[str, Any] = {}
    for name, path in paths.items():
        await _wrk(base + path, token, connections=connections, seconds=1)  # warm up
        routes[name] = await _wrk(base + path, token, connections=connections, seconds=seconds)
    bare = routes["healthz"]["per_s"]
    for figures in routes.values():
        figures["vs_healthz"] = round(figures["per_s"] / bare, 2) if bare else 0.0
    reads = [figures for name, figures in routes.items() if name != "healthz"]
    return {
        "routes": routes,
        "targets_met": all(
            f["vs_healthz"] >= RATIO_TARGET and f["p99_ms"] < P99_TARGET_MS for f in reads
        ),
    }


async def run_api_benchmark(
    *, connections: int, seconds: int, postgres_url: str | None
) -> dict[str, Any]:
    wrk_binary()
    result: dict[str, Any] = {
        "benchmark": "api",
        "measured": f"wrk, 1 thread, {connections} keep-alive connections, {seconds} s per "
        "route, against one `mornet up` process; each route's requests/s as a share of the "
        "same run's bare /healthz",
        "database": "postgresql" if postgres_url else "sqlite",
        "targets": f"every read >= {RATIO_TARGET} x /healthz and p99 < {P99_TARGET_MS:g} ms",
    }
    with scratch_directory() as scratch:
        if postgres_url:
            async with scratch_postgres(postgres_url, "mornet_bench_api") as url:
                with running_platform(
                    scratch, admin=ADMIN, env={"MORNET_DATABASE_URL": url}
                ) as base:
                    result |= await _measure(base, connections=connections, seconds=seconds)
        else:
            with running_platform(scratch, admin=ADMIN) as base:
                result |= await _measure(base, connections=connections, seconds=seconds)
    return result

"""`mornet bench bank`: the bank's notifications and deposits against a real `mornet up` process
(its sandbox bank, its local chain), driven over HTTP from this process.

1. Notifications: deposits are opened (Init), then a signed CONFIRMED notification for each is
   sent at a fixed offered rate; the time to the `OK` answer is measured from when each was
   due (so a server that falls behind shows it in the percentiles).
2. Deposits end to end: deposits are opened and paid on the sandbox bank's page with some
   concurrency; the bank notifies (AUTHORIZED, CONFIRMED), the platform mints in batches; the
   clock stops when the GCC of every deposit is confirmed on chain.
3. The reserves check at the end: GCC on chain equals the roubles held.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from mornet.bank.protocol import PaymentStatus, sign
from mornet.bench.harness import (
    children_of,
    cpu_between,
    cpu_by_process,
    percentile,
    pids_named,
    platform_process,
    scratch_directory,
    scratch_postgres,
)

ADMIN = ("bench-operator@example.com", "bench-operator-password")
TERMINAL_KEY = "MorNetBench"
PASSWORD = "bench-user-password"


async def _limited(
    count: int, concurrency: int, work: Callable[[int], Awaitable[Any]]
) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Any:
        async with gate:
            return await work(index)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _json(
    client: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    async with client.request(method, path, json=json, headers=headers) as answer:
        answer.raise_for_status()
        return await answer.json()


async def _login(client: aiohttp.ClientSession, email: str, password: str) -> dict[str, str]:
    token = await _json(
        client, "POST", "/api/auth/login", json={"email": email, "password": password}
    )
    return {"Authorization": f"Bearer {token['access_token']}"}


async def _users(client: aiohttp.ClientSession, count: int) -> list[dict[str, str]]:
    async def one(index: int) -> dict[str, str]:
        email = f"payer-{index}-{uuid.uuid4().hex[:8]}@example.com"
        await _json(
            client,
            "POST",
            "/api/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": f"Payer {index}"},
        )
        return await _login(client, email, PASSWORD)

    return await _limited(count, 4, one)


async def _open(client: aiohttp.ClientSession, headers: dict[str, str], amount: Decimal) -> Any:
    return await _json(
        client, "POST", "/api/bank/deposits", json={"amount": str(amount)}, headers=headers
    )


def _confirmation(deposit: dict[str, Any], password: str) -> dict[str, Any]:
    """The bank's CONFIRMED notification for a deposit, signed as the bank signs it."""
    body: dict[str, Any] = {
        "TerminalKey": TERMINAL_KEY,
        "OrderId": deposit["order_id"],
        "Success": True,
        "Status": PaymentStatus.CONFIRMED.value,
        "PaymentId": int(deposit["payment_id"]),
        "ErrorCode": "0",
        "Amount": int(Decimal(deposit["amount"]) * 100),
        "CardId": 100500,
        "Pan": "430000******0777",
        "ExpDate": "1230",
    }
    return {**body, "Token": sign(body, password)}


async def _offered(
    client: aiohttp.ClientSession, bodies: list[dict[str, Any]], rate: float
) -> tuple[list[float], float, int]:
    """Send `bodies` at `rate` per second (open loop). Returns each one's seconds to `OK`
    from when it was due, the seconds the whole run took, and how many were not `OK`."""
    latencies: list[float] = []
    refused = 0
    started = time.perf_counter()

    async def send(index: int, body: dict[str, Any]) -> None:
        nonlocal refused
        due = started + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        async with client.post("/api/bank/notifications/tbank", json=body) as answer:
            text = await answer.text()
        latencies.append(time.perf_counter() - due)
        if answer.status != 200 or text != "OK":
            refused += 1

    await asyncio.gather(*(send(i, body) for i, body in enumerate(bodies)))
    return latencies, time.perf_counter() - started, refused


async def _reserves(client: aiohttp.ClientSession, admin: dict[str, str]) -> dict[str, Any]:
    report: dict[str, Any] = await _json(client, "GET", "/api/admin/bank/reserves", headers=admin)
    return report


async def _until_minted(
    client: aiohttp.ClientSession, admin: dict[str, str], supply: Decimal, *, seconds: float = 600
) -> dict[str, Any]:
    """Poll the reserves until the GCC on chain is `supply` with no mint in flight."""
    deadline = time.monotonic() + seconds
    while True:
        report = await _reserves(client, admin)
        if Decimal(report["gcc_total_supply"]) == supply and not Decimal(
            report["gcc_mints_pending"]
        ):
            return report
        if time.monotonic() > deadline:
            raise TimeoutError(f"GCC did not reach {supply}: {report}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def _database(postgres_url: str | None) -> AsyncIterator[dict[str, str]]:
    if postgres_url is None:
        yield {}  # the embedded default: SQLite in the data directory
        return
    async with scratch_postgres(postgres_url, "mornet_bench_bank") as url:
        yield {"MORNET_DATABASE_URL": url}


async def run_bank_benchmark(
    *,
    notifications: int,
    rate: float,
    deposits: int,
    concurrency: int,
    users: int,
    postgres_url: str | None,
) -> dict[str, Any]:
    password = secrets.token_hex(16)
    amount = Decimal("100.00")
    with scratch_directory() as scratch:
        async with _database(postgres_url) as database:
            env = {
                "MORNET_BANK_TERMINAL_KEY": TERMINAL_KEY,
                "MORNET_BANK_PASSWORD": password,
                "MORNET_REGISTRATION_LIMIT": "100000",
                **database,
            }
            with platform_process(Path(scratch) / "platform", admin=ADMIN, env=env) as (
                base,
                pid,
            ):
                # aiohttp: the load must cost the machine less than what it measures (an
                # httpx client spent as much CPU per deposit as the platform).
                async with aiohttp.ClientSession(
                    base_url=base,
                    timeout=aiohttp.ClientTimeout(total=120),
                    # Below the server's keep-alive timeout (5 s): a connection the server
                    # closed between phases is not reused.
                    connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=2),
                ) as client:
                    return await _measure(
                        client,
                        processes=_Processes(pid),
                        password=password,
                        amount=amount,
                        notifications=notifications,
                        rate=rate,
                        deposits=deposits,
                        concurrency=concurrency,
                        users=users,
                        backend="postgresql" if postgres_url else "sqlite",
                    )
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Processes:
    """Where a deposit's CPU goes: the platform's process, its chain node, PostgreSQL and
    this process (the load)."""

    platform: int

    def snapshot(self) -> dict[str, dict[int, float]]:
        chain = [p for p in children_of(self.platform) if p in pids_named("anvil")]
        return {
            "platform": cpu_by_process([self.platform]),
            "chain_node": cpu_by_process(chain),
            "postgresql": cpu_by_process(pids_named("postgres")),
            "load": {os.getpid(): time.process_time()},
        }


async def _measure(
    client: aiohttp.ClientSession,
    *,
    processes: _Processes,
    password: str,
    amount: Decimal,
    notifications: int,
    rate: float,
    deposits: int,
    concurrency: int,
    users: int,
    backend: str,
) -> dict[str, Any]:
    admin = await _login(client, *ADMIN)
    payers = await _users(client, users)

    # 1. Notifications at the offered rate.
    opened = await _limited(
        notifications, concurrency, lambda i: _open(client, payers[i % users], amount)
    )
    bodies = [_confirmation(deposit, password) for deposit in opened]
    latencies, seconds, refused = await _offered(client, bodies, rate)
    await _until_minted(client, admin, amount * notifications)

    # 2. Deposits end to end: Init, paid on the bank's page, GCC confirmed on chain.
    async def deposit_and_pay(index: int) -> None:
        deposit = await _open(client, payers[index % users], amount)
        async with client.post(
            deposit["payment_url"], data={"action": "pay"}, allow_redirects=False
        ) as paid:
            if paid.status != 303:
                raise RuntimeError(f"the sandbox bank refused to pay: {paid.status}")

    cpu_before = processes.snapshot()
    started = time.perf_counter()
    await _limited(deposits, concurrency, deposit_and_pay)
    opened_seconds = time.perf_counter() - started
    report = await _until_minted(client, admin, amount * (notifications + deposits))
    end_to_end = time.perf_counter() - started
    cpu_after = processes.snapshot()

    return {
        "benchmark": "bank",
        "measured": "a real `mornet up` (sandbox bank, local anvil, "
        f"{backend}) driven over HTTP from another process on the same machine",
        "notifications": {
            "sent": notifications,
            "offered_per_s": rate,
            "handled_per_s": round(notifications / seconds, 1),
            "ok_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "ok_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "not_ok": refused,
        },
        "deposits": {
            "count": deposits,
            "concurrency": concurrency,
            "opened_and_paid_per_s": round(deposits / opened_seconds, 1),
            "end_to_end_per_s": round(deposits / end_to_end, 1),
            "end_to_end_seconds": round(end_to_end, 2),
            # From each process's user + system time over the deposits' run (the load's
            # includes polling the reserves until the last mint is on chain).
            "cpu_ms_per_deposit": {
                role: round(cpu_between(cpu_before[role], cpu_after[role]) * 1000 / deposits, 2)
                for role in cpu_before
            },
            "what": "Init → paid on the bank's page → AUTHORIZED, CONFIRMED notified → "
            "GCC minted (batched) and confirmed on chain",
        },
        "reserves": {
            "ok": report["ok"],
            "gcc_total_supply": report["gcc_total_supply"],
            "escrow_rub": report["escrow_rub"],
        },
    }

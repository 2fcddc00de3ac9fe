"""`mornet bench market`: orders per second in the in-process matching engine, and through the
HTTP API of a real `mornet up` (its local chain and sandbox bank) under concurrent clients
placing and cancelling orders, with latency percentiles, whether the book stayed consistent,
and whether the tokens were conserved.

1. Engine: random limit orders (and some cancels) from a few dozen owners around one price,
   straight into `Book.place`; a second book replays the same events and must end with the
   same digest, and the quantity placed must equal what rests, traded and was cancelled.
2. API: traders with a household in RU-MOW are funded (GCC through the sandbox bank's deposit
   page, E minted by an operator), then clients place buy and sell orders at prices around
   the middle of the tariff and cancel some of them. Afterwards the book must not be crossed,
   and once the chain has every fill, the traders' E and GCC must add up to what they were
   given (trades move tokens between them, never in or out).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx

from mornet.bench.harness import percentile, running_platform, scratch_directory, scratch_postgres
from mornet.market.engine import Book, Order, Side

ADMIN = ("bench-operator@example.com", "bench-operator-password")
PASSWORD = "bench-trader-password"
REGION = "RU-MOW"
GCC_EACH = Decimal(5000)
E_EACH = Decimal(500)


def engine_benchmark(orders: int, *, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311  # a reproducible load, not a secret
    events: list[tuple[str, Order]] = []
    placed: list[Order] = []
    for index in range(orders):
        if placed and rng.random() < 0.1:
            events.append(("cancel", rng.choice(placed)))
            continue
        order = Order(
            index,
            rng.randrange(40),
            Side.BUY if rng.random() < 0.5 else Side.SELL,
            rng.randrange(680, 721),
            rng.randrange(1, 5000),
            index,
        )
        placed.append(order)
        events.append(("place", order))
    book = Book()
    quantity = traded = cancelled = dropped = 0
    started = time.perf_counter()
    for kind, order in events:
        if kind == "cancel":
            gone = book.cancel(order.id)
            cancelled += gone.remaining if gone else 0
            continue
        fresh = Order(order.id, order.owner, order.side, order.price, order.remaining, order.seq)
        quantity += fresh.remaining
        placement = book.place(fresh)
        filled = sum(f.quantity for f in placement.fills)
        traded += 2 * filled
        if not placement.rested:
            dropped += fresh.remaining
    seconds = time.perf_counter() - started
    replay = Book()
    for kind, order in events:
        if kind == "cancel":
            replay.cancel(order.id)
        else:
            replay.place(
                Order(order.id, order.owner, order.side, order.price, order.remaining, order.seq)
            )
    resting = sum(o.remaining for o in book.resting())
    bid, ask = book.best(Side.BUY), book.best(Side.SELL)
    return {
        "engine_events": len(events),
        "engine_seconds": round(seconds, 3),
        "engine_orders_per_s": round(len(events) / seconds),
        "engine_book_consistent": (bid is None or ask is None or bid < ask)
        and book.digest() == replay.digest(),
        "engine_quantity_conserved": quantity == resting + traded + cancelled + dropped,
    }


async def _trader(client: httpx.AsyncClient, index: int) -> dict[str, Any]:
    email = f"trader-{index}-{uuid.uuid4().hex[:6]}@example.com"
    made = await client.post(
        "/api/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": f"Trader {index}"},
    )
    made.raise_for_status()
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    home = await client.post(
        "/api/households",
        json={"name": f"Home {index}", "address": "Bench street", "region": REGION},
        headers=headers,
    )
    home.raise_for_status()
    deposit = await client.post(
        "/api/bank/deposits", json={"amount": str(GCC_EACH)}, headers=headers
    )
    deposit.raise_for_status()
    paid = await client.post(deposit.json()["payment_url"], data={"action": "pay"})
    assert paid.status_code == 303, paid.text
    return {"email": email, "headers": headers}


async def _wallet(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Decimal]:
    answer = await client.get("/api/wallet", headers=headers)
    answer.raise_for_status()
    return {token: Decimal(v) for token, v in answer.json()["balances"].items()}


async def _eventually(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.5)
    return False


async def api_benchmark(base: str, *, traders: int, clients: int, orders: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        login = await client.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        people = [await _trader(client, i) for i in range(traders)]
        for person in people:
            minted = await client.post(
                "/api/token/mint",
                json={
                    "token": "E",
                    "account": person["email"],
                    "amount": str(E_EACH),
                    "idempotency_key": f"bench-e-{person['email']}",
                },
                headers=admin,
            )
            minted.raise_for_status()

        async def funded() -> bool:
            for person in people:
                wallet = await _wallet(client, person["headers"])
                if wallet["GCC"] < GCC_EACH or wallet["E"] < E_EACH:
                    return False
            return True

        if not await _eventually(funded, 300):
            raise RuntimeError("the traders were not funded in time")
        book = (await client.get(f"/api/market/books/{REGION}/E")).json()
        tariff = Decimal(book["tariff"])
        middle = (tariff * Decimal("0.9")).quantize(Decimal("0.01"))

        rng = random.Random(11)  # noqa: S311  # a reproducible load, not a secret
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        open_orders: dict[int, list[str]] = {i: [] for i in range(traders)}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(orders):
            queue.put_nowait(index)

        async def worker() -> None:
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                who = rng.randrange(traders)
                headers = people[who]["headers"]
                started = time.perf_counter()
                if open_orders[who] and rng.random() < 0.2:
                    answer = await client.delete(
                        f"/api/market/orders/{open_orders[who].pop()}", headers=headers
                    )
                else:
                    side = "buy" if rng.random() < 0.5 else "sell"
                    offset = Decimal(rng.randrange(-20, 21)) / 100
                    answer = await client.post(
                        "/api/market/orders",
                        json={
                            "region": REGION,
                            "resource": "E",
                            "side": side,
                            "price": str(min(middle + offset, tariff)),
                            "quantity": str(Decimal(rng.randrange(1, 2000)) / 1000),
                            "idempotency_key": f"bench-{index}",
                        },
                        headers=headers,
                    )
                    if answer.status_code == 201 and answer.json()["status"] == "open":
                        open_orders[who].append(answer.json()["id"])
                latencies.append(time.perf_counter() - started)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
        book = (await client.get(f"/api/market/books/{REGION}/E")).json()
        consistent = (
            book["best_bid"] is None
            or book["best_ask"] is None
            or Decimal(book["best_bid"]) < Decimal(book["best_ask"])
        )

        async def conserved() -> bool:
            e = gcc = Decimal(0)
            for person in people:
                wallet = await _wallet(client, person["headers"])
                e += wallet["E"]
                gcc += wallet["GCC"]
            return e == E_EACH * traders and gcc == GCC_EACH * traders

        tokens_conserved = await _eventually(conserved, 120)
        trades = (
            await client.get(
                "/api/market/trades", params={"region": REGION, "resource": "E", "limit": 1}
            )
        ).json()["total"]
    return {
        "api_requests": orders,
        "api_clients": clients,
        "api_seconds": round(seconds, 3),
        "api_orders_per_s": round(orders / seconds, 1),
        "api_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "api_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "api_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "trades": trades,
        "book_consistent": consistent,
        "tokens_conserved": tokens_conserved,
    }


async def run_market_benchmark(
    *,
    engine_orders: int,
    traders: int,
    clients: int,
    orders: int,
    postgres_url: str | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "market",
        "measured": "engine: limit orders (10% cancels) placed in one in-memory book; api: "
        "orders placed and cancelled over HTTP against one `mornet up` process (its local "
        "chain), each matched, journalled and its fills queued on chain in one transaction",
        **engine_benchmark(engine_orders),
    }
    with scratch_directory() as scratch:
        env: dict[str, str] = {}
        if postgres_url:
            async with scratch_postgres(postgres_url, "mornet_bench_market") as url:
                env["MORNET_DATABASE_URL"] = url
                with running_platform(scratch, admin=ADMIN, env=env) as base:
                    result |= await api_benchmark(
                        base, traders=traders, clients=clients, orders=orders
                    )
        else:
            with running_platform(scratch, admin=ADMIN, env=env) as base:
                result |= await api_benchmark(base, traders=traders, clients=clients, orders=orders)
    result["database"] = "postgresql" if postgres_url else "sqlite"
    return result

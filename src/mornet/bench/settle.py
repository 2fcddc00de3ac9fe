"""`mornet bench settle`: household-days rated per second, and households settled per second
end to end (settlement rows committed, every token move confirmed on a local anvil), with the
token supplies reconciled against the recorded moves afterwards."""

from __future__ import annotations

import base64
import os
import time
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from eth_account import Account
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.bench.harness import scratch_chain, scratch_directory, scratch_postgres, scratch_sqlite
from mornet.chain import service as chain
from mornet.chain.client import ChainClient
from mornet.chain.schemas import OperationKind
from mornet.chain.submitter import Submitter
from mornet.cost import service as cost
from mornet.crypto import WalletCipher
from mornet.db import create_engine, create_sessionmaker, unit_of_work
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.resources import Resource
from mornet.runtime import settle_heap
from mornet.telemetry import service as telemetry
from mornet.telemetry.schemas import NormalisedBatch, NormalisedReading
from mornet.tokens import service as tokens
from mornet.treasury import service as treasury
from mornet.wallets import service as wallets

REGION = "RU-MOW"
ZONE = ZoneInfo("Europe/Moscow")
HOURLY_USE = {Resource.ELECTRICITY: "0.5", Resource.HEAT: "1.2", Resource.WATER: "0.015"}
"""Each household's use per hour: kWh of electricity and heat, m³ of water."""


def _day_before(now: datetime) -> tuple[datetime, datetime]:
    """Yesterday in Moscow, as UTC bounds."""
    today = now.astimezone(ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=1)
    return start.astimezone(UTC), today.astimezone(UTC)


async def _seed(
    sessions: async_sessionmaker[AsyncSession],
    handle: chain.ChainHandle,
    *,
    count: int,
    owners: int,
    day: tuple[datetime, datetime],
) -> list[uuid.UUID]:
    """`owners` users with `count` households between them, each with a day of hourly use of
    E, H and W; half the owners hold prepaid units for part of it, every owner holds GCC."""
    cipher = WalletCipher(base64.b64encode(os.urandom(32)).decode())
    start, _ = day
    owner_ids: list[uuid.UUID] = []
    async with unit_of_work(sessions) as session:
        for index in range(owners):
            user = await identity.register(
                session,
                email=f"bench-{index}@example.org",
                password=uuid.uuid4().hex,
                full_name=f"Bench {index}",
            )
            await wallets.open_wallet(session, user_id=user.id, cipher=cipher)
            owner_ids.append(user.id)
    household_ids: list[uuid.UUID] = []
    async with unit_of_work(sessions) as session:
        for index in range(count):
            owner = owner_ids[index % owners]
            household = await households.create_household(
                session,
                owner=tokens.SystemActor(id=owner, is_admin=False),
                name=f"Bench {index}",
                address="Bench street",
                region_code=REGION,
            )
            household.created_at = start  # opened at the start of the benchmarked day
            household_ids.append(household.id)
        batches = [
            NormalisedBatch(
                household_id=household_id,
                agent_id=None,
                readings=[
                    NormalisedReading(
                        device_id=f"plug-{resource.value}",
                        resource=resource,
                        ts=start + timedelta(hours=hour),
                        seq=hour,
                        counter=Decimal(use) * hour,
                    )
                    for resource, use in HOURLY_USE.items()
                    for hour in range(25)
                ],
            )
            for household_id in household_ids
        ]
        for first in range(0, len(batches), 200):
            await telemetry.store_batches(session, batches[first : first + 200])
        addresses = await wallets.addresses_of(session, owner_ids)
        per_owner = -(-count // owners)
        for token, amount in (("E", Decimal(6) * per_owner), ("GCC", Decimal(500) * per_owner)):
            everyone = list(addresses.values())
            receivers = everyone if token == "GCC" else everyone[::2]
            await chain.request(
                session,
                handle,
                token=token,
                kind=OperationKind.MINT,
                moves=[
                    chain.Move(amount=chain.to_base_units(amount), receiver=r) for r in receivers
                ],
                idempotency_key=f"bench:prepay:{token}",
            )
    await handle.submitter.drain(max_seconds=600)
    return household_ids


async def run_settle_benchmark(
    *, households_count: int, owners: int, postgres_url: str | None
) -> dict[str, Any]:
    owners = max(1, min(owners, households_count))
    with scratch_directory() as scratch:
        database: AbstractAsyncContextManager[str] = (
            scratch_postgres(postgres_url, "mornet_bench_settle")
            if postgres_url
            else scratch_sqlite(scratch)
        )
        async with database as url, scratch_chain() as node:
            engine = create_engine(url)
            client = await ChainClient.connect(node.rpc_url, Account.create().key.hex())
            try:
                sessions = create_sessionmaker(engine)
                await client.fund_operator_on_dev_chain()
                async with unit_of_work(sessions) as session:
                    contracts = await chain.ensure_deployed(session, client)
                submitter = Submitter(sessions, client, contracts)
                handle = chain.ChainHandle(client, contracts, submitter)
                settle_heap()  # as the settlement worker does once it has started
                day = _day_before(datetime.now(UTC))
                household_ids = await _seed(
                    sessions, handle, count=households_count, owners=owners, day=day
                )

                # Rating alone, as settlement rates: every household's day at once (kept).
                started = time.perf_counter()
                async with unit_of_work(sessions) as session:
                    await cost.calculate_many(
                        session,
                        [cost.RatingRequest(h, REGION, *day) for h in household_ids],
                        created_by=tokens.PLATFORM_ID,
                    )
                rating_seconds = time.perf_counter() - started

                # Settlement end to end: one run, then every move confirmed on chain.
                started = time.perf_counter()
                async with unit_of_work(sessions) as session:
                    settled = await tokens.settle_due(
                        session,
                        handle,
                        now=day[1] + timedelta(minutes=15),
                        length="day",
                        grace=timedelta(minutes=15),
                        treasury=treasury.FALLBACK_ADDRESS,
                        limit=households_count,
                    )
                committed_seconds = time.perf_counter() - started
                await handle.submitter.drain(max_seconds=600)
                settle_seconds = time.perf_counter() - started
                async with sessions() as session:
                    statuses = await tokens.settlement_statuses(session, settled)
                    report = await chain.reconcile_tokens(session, handle)
            finally:
                await client.close()
                await engine.dispose()
    return {
        "benchmark": "settle",
        "measured": "rating: cost calculations of one day (24 hourly rows each of E, H, W) per "
        "household, stored; settlement: one run over every household (rate, burn prepaid, "
        "pay GCC, mint GCM, rows committed) until all its chain moves are confirmed on a "
        "local anvil",
        "database": "postgresql" if postgres_url else "sqlite",
        "households": households_count,
        "owners": owners,
        "rating_seconds": round(rating_seconds, 3),
        "rated_household_days_per_s": round(households_count / rating_seconds, 1),
        "settled": len(settled),
        "settle_commit_seconds": round(committed_seconds, 3),
        "settle_seconds": round(settle_seconds, 3),
        "settled_households_per_s": round(len(settled) / settle_seconds, 1),
        "confirmed": statuses.count("confirmed"),
        "supply_matches": report.ok,
    }

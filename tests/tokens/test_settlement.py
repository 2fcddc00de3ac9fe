"""Settlement: each household's closed day burns its prepaid units, pays the rest in GCC to
the treasury (or records arrears), mints GCM — once, in moves batched across households, on a
real chain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.models import ChainOperation, OperationKind
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.households.models import Household
from mornet.runtime import Runtime
from mornet.tokens import service as tokens
from mornet.tokens.models import Settlement
from mornet.wallets import service as wallets
from tests.cost.helpers import household_with_use
from tests.factories import user_with_token

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 3, tzinfo=UTC)  # 1 and 2 November (Moscow) are closed
TREASURY = tokens.TREASURY_FALLBACK
WEI = Decimal(10**18)


async def _household(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> tuple[uuid.UUID, dict[str, str], uuid.UUID, str]:
    """A household that used 0.125 kWh at 5 and 0.625 kWh at 8 RUB/kWh on 1 November
    (`household_with_use`), opened that day."""
    used = await household_with_use(client, session, runtime)
    opened = datetime(2026, 11, 1, tzinfo=MOSCOW)
    await session.execute(
        update(Household).where(Household.id == used.id).values(created_at=opened)
    )
    await session.commit()
    return used.id, used.headers, used.owner_id, used.owner_email


async def _give(runtime: Runtime, chain: ChainHandle, user_id: uuid.UUID, **amounts: str) -> None:
    async with unit_of_work(runtime.sessions) as tx:
        for token, amount in amounts.items():
            await tokens.move(
                tx,
                chain,
                kind=OperationKind.MINT,
                token=token,
                account=str(user_id),
                amount=Decimal(amount),
                idempotency_key=f"test:{uuid.uuid4()}",
                actor_id=None,
            )
    await chain.submitter.drain(max_seconds=60)


async def _settle(runtime: Runtime, chain: ChainHandle, now: datetime = NOW) -> list[Settlement]:
    async with unit_of_work(runtime.sessions) as tx:
        settled = await tokens.settle_due(
            tx, chain, now=now, length="day", grace=timedelta(minutes=15), treasury=TREASURY
        )
    await chain.submitter.drain(max_seconds=60)
    return settled


async def _balance(
    chain: ChainHandle, session: AsyncSession, user_id: uuid.UUID, token: str
) -> Decimal:
    wallet = await wallets.wallet_of(session, user_id)
    return Decimal(await chain.balance_of(token, wallet.address)) / WEI


def _day_one(settled: list[Settlement], household_id: uuid.UUID) -> Settlement:
    [first] = [
        s for s in settled if s.household_id == household_id and s.period_start.day == 31
    ]  # 1 November in Moscow starts at 21:00 UTC on 31 October
    return first


async def test_prepaid_units_cover_the_day_and_gcm_is_minted(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, headers, user_id, email = await _household(client, session, runtime)
    await _give(runtime, chain, user_id, E="10")
    settled = await _settle(runtime, chain)
    assert len([s for s in settled if s.household_id == household_id]) == 2  # 1 and 2 November
    day = _day_one(settled, household_id)
    assert (day.consumed, day.burned) == ({"E": "0.750000"}, {"E": "0.75"})
    assert (day.cost_total, day.shortfall_gcc, day.arrears_gcc) == (Decimal("5.63"), 0, 0)
    assert await _balance(chain, session, user_id, "E") == Decimal("9.25")
    assert await _balance(chain, session, user_id, "GCM") == Decimal("5.63")  # gcm_rate 1

    listed = await client.get(f"/api/households/{household_id}/settlements", headers=headers)
    assert listed.status_code == 200
    first = next(s for s in listed.json()["items"] if s["id"] == str(day.id))
    assert (first["status"], Decimal(first["gcm"])) == ("confirmed", Decimal("5.63"))
    one = await client.get(f"/api/households/{household_id}/settlements/{day.id}", headers=headers)
    assert one.json()["burned"] == {"E": "0.75"}

    from tests.web.test_pages import page_login

    await page_login(client, email)
    page = await client.get(f"/households/{household_id}")
    panel = page.text[page.text.index('id="settlements"') :]
    assert "E 0.750000" in panel
    assert "5.63 RUB" in panel
    assert "confirmed" in panel


async def test_a_shortfall_is_paid_in_gcc_at_its_tariff_and_the_rest_is_arrears(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    covered, _, covered_owner, _ = await _household(client, session, runtime)
    short, _, short_owner, _ = await _household(client, session, runtime)
    # 0.25 E covers 10:00 to 10:30 (0.125 at 5) and 0.125 of the rest: 0.5 kWh at 8 = 4.00 GCC.
    await _give(runtime, chain, covered_owner, E="0.25", GCC="100")
    # No E and 1 GCC: 5.63 is due, 1.00 is paid, 4.63 is owed.
    await _give(runtime, chain, short_owner, GCC="1")
    settled = await _settle(runtime, chain)

    paid = _day_one(settled, covered)
    assert (paid.burned, paid.shortfall_gcc, paid.paid_gcc, paid.arrears_gcc) == (
        {"E": "0.25"},
        Decimal("4.00"),
        Decimal("4.00"),
        0,
    )
    owed = _day_one(settled, short)
    assert (owed.shortfall_gcc, owed.paid_gcc, owed.arrears_gcc) == (
        Decimal("5.63"),
        Decimal("1.00"),
        Decimal("4.63"),
    )
    assert await _balance(chain, session, covered_owner, "GCC") == 96
    assert await _balance(chain, session, short_owner, "GCC") == 0
    assert Decimal(await chain.balance_of("GCC", TREASURY)) / WEI == 5
    # Both households' moves went in one operation per token and kind.
    session.expire_all()
    operations = (
        await session.scalars(
            select(ChainOperation).where(ChainOperation.idempotency_key.in_(paid.operation_keys))
        )
    ).all()
    assert sorted((op.token, str(op.kind), len(op.items)) for op in operations) == [
        ("E", "burn", 1),
        ("GCC", "transfer", 2),
        ("GCM", "mint", 2),
    ]
    assert set(owed.operation_keys) == set(paid.operation_keys)


async def test_a_killed_run_settles_nothing_and_a_run_again_settles_once(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, _, user_id, _ = await _household(client, session, runtime)
    await _give(runtime, chain, user_id, E="5")

    class Killed(Exception):
        pass

    async def killed_run() -> None:
        async with unit_of_work(runtime.sessions) as tx:
            await tokens.settle_due(
                tx, chain, now=NOW, length="day", grace=timedelta(minutes=15), treasury=TREASURY
            )
            raise Killed  # the worker dies before its transaction commits

    with pytest.raises(Killed):
        await killed_run()
    count = (
        select(func.count()).select_from(Settlement).where(Settlement.household_id == household_id)
    )
    assert await session.scalar(count) == 0
    assert await _balance(chain, session, user_id, "E") == 5

    assert len([s for s in await _settle(runtime, chain) if s.household_id == household_id]) == 2
    assert [s for s in await _settle(runtime, chain) if s.household_id == household_id] == []
    later = await _settle(runtime, chain, now=NOW + timedelta(days=1))
    assert len([s for s in later if s.household_id == household_id]) == 1  # 3 November
    session.expire_all()
    assert await session.scalar(count) == 3
    assert await _balance(chain, session, user_id, "E") == Decimal("4.25")


async def test_settlements_are_private_and_the_operator_runs_them(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, headers, _, _ = await _household(client, session, runtime)
    _, intruder = await user_with_token(client, session)
    _, admin = await user_with_token(client, session, admin=True)
    assert (await client.post("/api/admin/settlements/run", headers=headers)).status_code == 403
    ran = await client.post("/api/admin/settlements/run", headers=admin)
    assert ran.status_code == 200, ran.text
    body: dict[str, Any] = ran.json()
    assert body["settled"] >= 2  # every closed day since 1 November
    again = await client.post("/api/admin/settlements/run", headers=admin)
    assert again.json()["settled"] == 0
    foreign = await client.get(f"/api/households/{household_id}/settlements", headers=intruder)
    assert foreign.status_code == 404
    some = body["settlements"][0]["id"]
    stolen = await client.get(
        f"/api/households/{household_id}/settlements/{some}", headers=intruder
    )
    assert stolen.status_code == 404


def test_periods_are_local_days_closed_after_the_grace_or_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    since = datetime(2026, 10, 24, 12, tzinfo=UTC)
    grace = timedelta(minutes=15)
    days = tokens.closed_periods(
        since=since,
        now=datetime(2026, 10, 26, 23, 15, tzinfo=UTC),
        zone=berlin,
        length="day",
        grace=grace,
        limit=10,
    )
    # 24, 25 and 26 October; the clocks went back on the 25th: a day of 25 hours.
    assert [(s.isoformat(), (e - s).total_seconds() / 3600) for s, e in days] == [
        ("2026-10-23T22:00:00+00:00", 24.0),
        ("2026-10-24T22:00:00+00:00", 25.0),
        ("2026-10-25T23:00:00+00:00", 24.0),
    ]
    # 26 October ends at 23:00 UTC; with the grace it closes at 23:15, not before.
    early = tokens.closed_periods(
        since=since,
        now=datetime(2026, 10, 26, 23, 14, tzinfo=UTC),
        zone=berlin,
        length="day",
        grace=grace,
        limit=10,
    )
    assert len(early) == 2
    hours = tokens.closed_periods(
        since=since,
        now=since + timedelta(hours=3),
        zone=berlin,
        length="hour",
        grace=grace,
        limit=10,
    )
    assert [s.hour for s, _ in hours] == [12, 13]

"""Settlement: each household's closed day burns its prepaid units, pays the rest in GCC to
the treasury (or records arrears), mints GCM — once, in moves batched across households, on a
real chain."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import service as chain_service
from mornet.chain.models import ChainOperation, OperationKind
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.runtime import Runtime
from mornet.tokens import service as tokens
from mornet.tokens.models import ArrearsPayment, Settlement, SettlementAdjustment
from mornet.treasury import service as treasury
from mornet.wallets import service as wallets
from tests.chain.test_contracts import Token, batch
from tests.cost.helpers import OPENED, household_with_use
from tests.factories import user_with_token
from tests.telemetry.helpers import plug, store_readings

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 3, tzinfo=UTC)  # 1 and 2 November (Moscow) are closed
TREASURY = treasury.FALLBACK_ADDRESS
WEI = Decimal(10**18)


async def _household(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> tuple[uuid.UUID, dict[str, str], uuid.UUID, str]:
    """A household that used 0.125 kWh at 5 and 0.625 kWh at 8 RUB/kWh on 1 November
    (`household_with_use`), opened that day."""
    used = await household_with_use(client, session, runtime, opened=OPENED)
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
    # The wallet's history says which periods the burn and the GCM settle.
    history = (await client.get("/api/wallet/transactions", headers=headers)).json()
    burn = next(e for e in history if e["kind"] == "burn" and e["token"] == "E")
    gcm = next(e for e in history if e["kind"] == "mint" and e["token"] == "GCM")
    days = sorted(s.period_start for s in settled if s.household_id == household_id)
    assert [datetime.fromisoformat(d) for d in burn["settles"]] == days
    assert gcm["settles"] == burn["settles"]
    wallet_page = await client.get("/wallet")
    assert "settles 2026-10-31 21:00 UTC, 2026-11-01 21:00 UTC" in wallet_page.text


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


async def test_arrears_are_paid_first_from_the_next_gcc_even_before_the_next_period(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, headers, owner, _ = await _household(client, session, runtime)
    await _give(runtime, chain, owner, GCC="1")
    settled = await _settle(runtime, chain)
    day_one = _day_one(settled, household_id)
    assert (day_one.paid_gcc, day_one.arrears_gcc) == (Decimal("1.00"), Decimal("4.63"))
    # 2 November used nothing: it carries the debt, which nothing could pay yet.
    [day_two] = [s for s in settled if s.household_id == household_id and s is not day_one]
    assert (day_two.arrears_before_gcc, day_two.paid_gcc, day_two.arrears_gcc) == (
        Decimal("4.63"),
        0,
        Decimal("4.63"),
    )
    treasury_before = Decimal(await chain.balance_of("GCC", TREASURY)) / WEI

    await _give(runtime, chain, owner, GCC="3")  # not enough for all of it
    # Until the next run pays it, the GCC that arrived is held for the arrears: it cannot go
    # anywhere else first.
    wallet = (await client.get("/api/wallet", headers=headers)).json()
    assert Decimal(wallet["held"]["GCC"]) == Decimal("4.63")
    other, _ = await user_with_token(client, session)
    escape = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": str(other.id), "amount": "1", "idempotency_key": "escape"},
        headers=headers,
    )
    assert escape.status_code == 422
    assert escape.json()["error"]["code"] == "insufficient_balance"
    assert await _settle(runtime, chain) == []  # no period is due, the GCC pays anyway
    await _give(runtime, chain, owner, GCC="10")
    assert await _settle(runtime, chain) == []
    assert await _settle(runtime, chain) == []  # nothing owed: nothing more is paid
    assert await _balance(chain, session, owner, "GCC") == Decimal("8.37")
    assert Decimal(await chain.balance_of("GCC", TREASURY)) / WEI - treasury_before == Decimal(
        "4.63"
    )
    payments = (
        await session.scalars(
            select(ArrearsPayment.amount)
            .where(ArrearsPayment.household_id == household_id)
            .order_by(ArrearsPayment.created_at)
        )
    ).all()
    assert payments == [Decimal("3.00"), Decimal("1.63")]
    assert await tokens.arrears_of_owner(session, owner) == 0

    # The next period starts from a clean slate.
    later = await _settle(runtime, chain, now=NOW + timedelta(days=1))
    [day_three] = [s for s in later if s.household_id == household_id]
    assert (day_three.arrears_before_gcc, day_three.arrears_gcc) == (0, 0)

    _, admin = await user_with_token(client, session, admin=True)
    assert (await client.get("/api/admin/settlements/runs", headers=headers)).status_code == 403
    runs = (await client.get("/api/admin/settlements/runs", headers=admin)).json()["items"]
    assert [(r["settled"], r["arrears_payments"], r["status"]) for r in runs[:4]] == [
        (len(later), 0, "confirmed"),
        (0, 1, "confirmed"),
        (0, 1, "confirmed"),
        (len(settled), 0, "confirmed"),
    ]
    assert Decimal(runs[1]["paid_gcc"]) == Decimal("1.63")
    from tests.web.test_pages import page_login

    operator, _ = await user_with_token(client, session, admin=True)
    await page_login(client, operator.email)
    page = await client.get("/admin/settlements")
    assert page.status_code == 200
    assert page.text.count("<tr><td>") >= 4


async def test_late_readings_of_a_settled_day_are_an_adjustment_in_the_next_one(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, headers, owner, _ = await _household(client, session, runtime)
    await _give(runtime, chain, owner, E="10", GCC="10")
    day_one = _day_one(await _settle(runtime, chain), household_id)
    assert day_one.burned == {"E": "0.75"}

    # The plug was offline: its reading of 12:30 on 1 November arrives on the 4th.
    await store_readings(runtime, household_id, [plug(150, 2000.0)])
    [day_three] = [
        s
        for s in await _settle(runtime, chain, now=NOW + timedelta(days=1))
        if s.household_id == household_id
    ]
    session.expire_all()
    [adjustment] = (
        await session.scalars(
            select(SettlementAdjustment).where(SettlementAdjustment.settlement_id == day_three.id)
        )
    ).all()
    assert (adjustment.adjusts_id, adjustment.resource, adjustment.quantity) == (
        day_one.id,
        "E",
        "0.250000",
    )
    assert (adjustment.cost, adjustment.burned) == (Decimal("2.00"), "0.25")  # 0.25 kWh at 8
    assert (day_three.consumed, day_three.adjustment_gcc, Decimal(day_three.gcm)) == ({}, 0, 2)
    assert await _balance(chain, session, owner, "E") == Decimal("9.00")
    assert await _balance(chain, session, owner, "GCM") == Decimal("7.63")
    # The settled day is never edited.
    unchanged = await session.get(Settlement, day_one.id)
    assert unchanged is not None
    assert (unchanged.consumed, unchanged.burned) == ({"E": "0.750000"}, {"E": "0.75"})
    # Looking again finds nothing new: the adjustment is not settled twice.
    again = await _settle(runtime, chain, now=NOW + timedelta(days=2))
    [day_four] = [s for s in again if s.household_id == household_id]
    assert (day_four.adjustment_gcc, Decimal(day_four.gcm)) == (0, 0)
    assert await _balance(chain, session, owner, "E") == Decimal("9.00")
    shown = await client.get(
        f"/api/households/{household_id}/settlements/{day_three.id}", headers=headers
    )
    assert [(a["adjusts_id"], a["quantity"], a["cost"]) for a in shown.json()["adjustments"]] == [
        (str(day_one.id), "0.250000", "2.00")
    ]


async def test_a_late_reading_beyond_prepaid_units_is_paid_in_gcc(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, _, owner, _ = await _household(client, session, runtime)
    await _give(runtime, chain, owner, E="0.85", GCC="10")
    await _settle(runtime, chain)
    await store_readings(runtime, household_id, [plug(150, 2000.0)])
    [day_three] = [
        s
        for s in await _settle(runtime, chain, now=NOW + timedelta(days=1))
        if s.household_id == household_id
    ]
    # 0.10 E left covers 0.10 of the late 0.25 kWh; 0.15 at 8 RUB is 1.20 GCC.
    assert (day_three.adjustment_gcc, day_three.paid_gcc) == (Decimal("1.20"), Decimal("1.20"))
    assert await _balance(chain, session, owner, "E") == 0
    assert await _balance(chain, session, owner, "GCC") == Decimal("8.80")


async def test_two_settlers_at_once_settle_each_period_once(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    household_id, _, owner, _ = await _household(client, session, runtime)
    await _give(runtime, chain, owner, E="10")

    async def settler() -> int:
        async with unit_of_work(runtime.sessions) as tx:
            settled = await tokens.settle_due(
                tx, chain, now=NOW, length="day", grace=timedelta(minutes=15), treasury=TREASURY
            )
            return len([s for s in settled if s.household_id == household_id])

    outcomes = await asyncio.gather(settler(), settler(), return_exceptions=True)
    # PostgreSQL queues the second behind the first, which leaves it nothing to do; SQLite
    # refuses the second writer. Either way one run settled the two days.
    settled_counts = sorted(o for o in outcomes if isinstance(o, int))
    assert settled_counts in ([2], [0, 2])
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            assert isinstance(outcome, (IntegrityError, OperationalError)), outcome
    await chain.submitter.drain(max_seconds=60)
    count = (
        select(func.count()).select_from(Settlement).where(Settlement.household_id == household_id)
    )
    assert await session.scalar(count) == 2
    assert await _balance(chain, session, owner, "E") == Decimal("9.25")


async def test_reconciliation_matches_supply_to_recorded_moves_and_finds_a_stray_mint(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, _, owner, _ = await _household(client, session, runtime)
    await _give(runtime, chain, owner, E="10", GCC="2")
    await _settle(runtime, chain)
    session.expire_all()
    report = await chain_service.reconcile_tokens(session, chain)
    assert report.ok, report
    supplies = {s.token: s for s in report.supplies}
    assert supplies["E"].total_supply == supplies["E"].recorded == Decimal("9.25")
    assert supplies["E"].by_purpose == {"settlement": Decimal("-0.75"), "token": 10}
    assert supplies["GCM"].by_purpose == {"settlement": Decimal("5.63")}

    # A mint that went past the platform (the operator key used by hand).
    wallet = await wallets.wallet_of(session, owner)
    stray = Token(chain.client, chain.contracts["E"])
    await stray.send(chain.client.operator, "mint_batch", batch(123456), [wallet.address], [10**18])
    report = await chain_service.reconcile_tokens(session, chain)
    assert not report.ok
    [e_supply] = [s for s in report.supplies if s.token == "E"]
    assert (e_supply.total_supply, e_supply.recorded, e_supply.ok) == (
        Decimal("10.25"),
        Decimal("9.25"),
        False,
    )
    assert [(m.address, m.token, m.on_chain, m.recorded) for m in report.mismatched_balances] == [
        (wallet.address, "E", Decimal("10.25"), Decimal("9.25"))
    ]


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

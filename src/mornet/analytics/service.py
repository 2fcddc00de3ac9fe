"""The household dashboard: each own household at a glance, the wallet, what prepaid units
are worth in days, the last moves — read from the contexts' public services, never their
tables."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.analytics import repository
from mornet.analytics.models import LoggedEvent, SeriesPoint
from mornet.analytics.schemas import (
    DashboardOut,
    EventOut,
    GccFigures,
    HouseholdCounts,
    HouseholdGlance,
    MoneyFigures,
    SeriesOut,
    SeriesPointOut,
    SummaryOut,
    TradeFigures,
    Use,
    WalletGlance,
)
from mornet.bank import service as bank
from mornet.chain import service as chain
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import TOKENS
from mornet.changes import cached_read, topics_of
from mornet.cost import service as cost
from mornet.db import utcnow
from mornet.errors import ValidationFailed
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.market import service as market
from mornet.outbox import DomainEvent
from mornet.pagination import PageRequest, fetch_page
from mornet.resources import Resource
from mornet.tariffs import service as tariffs
from mornet.telemetry import service as telemetry
from mornet.tokens import service as tokens
from mornet.wallets import service as wallets
from mornet.wallets.history import history_out

TRAILING = timedelta(days=7)
KOPECK = Decimal("0.01")
DEPOSITS = "bank.deposit.confirmed"
WITHDRAWALS = "bank.withdrawal.paid"
DAY_PLACES = Decimal("0.1")


DASHBOARD_SOURCES = (
    *households.HOUSEHOLD_TOPICS,
    *telemetry.USE_TOPICS,
    *tariffs.TARIFF_TOPICS,
    *wallets.WALLET_TOPICS,
    *chain.MOVE_TOPICS,
    *tokens.SETTLEMENT_TOPICS,
)
"""Everything the dashboard shows is read from what these topics announce (and the balances
the chain's balance book shows)."""
DASHBOARD_MAX_AGE_S = 2.0
"""How long one user's dashboard is shown again while none of its sources moved: its day,
month and trailing week move with the clock too (`as_of` says when it was read)."""


async def dashboard(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> DashboardOut:
    """The actor's dashboard; read again only when a source moved or it is older than
    `DASHBOARD_MAX_AGE_S` (or at a given `now`)."""
    if now is not None:
        return await _dashboard(session, handle, actor=actor, now=now)
    return await chain.cached_with_shown_balances(
        session,
        handle,
        "analytics.dashboard",
        DASHBOARD_SOURCES,
        actor.id,
        lambda: _dashboard(session, handle, actor=actor, now=utcnow()),
        max_age=DASHBOARD_MAX_AGE_S,
    )


async def _dashboard(
    session: AsyncSession, handle: chain.ChainHandle | None, *, actor: Actor, now: datetime
) -> DashboardOut:
    glances: list[HouseholdGlance] = []
    daily_use: dict[str, Decimal] = defaultdict(Decimal)
    for detail in await households.list_own_households(session, owner=actor):
        household = detail.household
        today = await telemetry.today(session, actor=actor, household_id=household.id)
        try:
            _, lines = await cost.month_so_far(
                session, actor=actor, household_id=household.id, now=now
            )
        except cost.NoTariffForUse:  # its region has no price in force yet: no cost to show
            lines = []
        week = await telemetry.household_consumption(
            session,
            actor=actor,
            household_id=household.id,
            start=now - TRAILING,
            end=now,
            resource=None,
            granularity="hour",
        )
        average: dict[str, Decimal] = defaultdict(Decimal)
        for point in week:
            average[point.resource.value] += point.quantity / 7
        for resource, quantity in average.items():
            daily_use[resource] += quantity
        costs = {line.resource.value: line.cost for line in lines}
        glances.append(
            HouseholdGlance(
                household_id=household.id,
                name=household.name,
                region=household.region_code,
                power_w=today.power_w,
                today={r.value: q for r, q in today.totals.items()},
                month={line.resource.value: line.quantity for line in lines},
                month_cost={**costs, "total": sum(costs.values(), Decimal(0))},
                daily_average={r: q.quantize(Decimal("0.001")) for r, q in average.items()},
            )
        )
    wallet = await wallets.wallet_of(session, actor.id)
    spendable = await wallets.available_of(session, handle, [wallet], TOKENS, shown=True)
    available = {
        token: chain.from_base_units(max(spendable[(wallet.address, token)], 0)) for token in TOKENS
    }
    days_left: dict[str, Decimal | None] = {}
    for resource in Resource:
        use = daily_use.get(resource.value, Decimal(0))
        days_left[resource.value] = (
            (available[resource.value] / use).quantize(DAY_PLACES) if use > 0 else None
        )
    return DashboardOut(
        as_of=now.astimezone(UTC),
        households=glances,
        wallet=WalletGlance(
            available=available,
            held=await wallets.held_tokens(session, wallet.user_id),
            prepaid_days_left=days_left,
        ),
        transactions=await history_out(session, wallet, limit=10),
    )


SERIES_TOPICS = topics_of(SeriesPoint)
"""Series are read from analytics' own hourly points alone."""
SUMMARY_SOURCES = (
    *identity.USER_TOPICS,
    *households.HOUSEHOLD_TOPICS,
    *SERIES_TOPICS,
    *chain.MOVE_TOPICS,
    *bank.MONEY_TOPICS,
    *market.TRADE_TOPICS,
)
"""The summary's counts move only with these; its GCC figures move on chain with the
platform's chain operations (`chain.MOVE_TOPICS`)."""
SUMMARY_MAX_AGE_S = 2.0
"""How long the summary is shown again while none of its sources moved: a bound on what a
move on chain that the platform did not make (a transfer into the treasury) leaves unseen;
`as_of` says when it was read."""


async def summary(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    treasury: str,
    now: datetime | None = None,
) -> SummaryOut:
    """The platform at a glance for operators; the GCC figures are read from the chain. Kept
    in the process's cache while no source moved, for `SUMMARY_MAX_AGE_S` at most (read
    every time at a given `now`)."""
    if handle is None:
        raise ChainUnavailable()
    if now is not None:
        return await _summary(session, handle, treasury=treasury, now=now)
    return await cached_read(
        session,
        "analytics.summary",
        SUMMARY_SOURCES,
        treasury,
        lambda: _summary(session, handle, treasury=treasury, now=utcnow()),
        max_age=SUMMARY_MAX_AGE_S,
    )


async def _summary(
    session: AsyncSession, live: chain.ChainHandle, *, treasury: str, now: datetime
) -> SummaryOut:
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # From analytics' own hourly points (kept current every minute), not a scan of every
    # household's hours.
    today = await _use_since(session, midnight)
    month = await _use_since(session, _hour(now - timedelta(days=30)))
    total, active, with_agents = await households.household_counts(session)
    supply = chain.from_base_units(await live.total_supply("GCC"))
    in_treasury, in_reserve, held = (
        chain.from_base_units(units)
        for units in await live.balances_of(
            [("GCC", a) for a in (treasury, market.MARKET_RESERVE, bank.ESCROW_ADDRESS)]
        )
    )
    deposits, deposited, withdrawals, withdrawn = await bank.money_totals(session)
    trades, volume = await market.trade_totals(session)
    return SummaryOut(
        users=await identity.count_users(session),
        households=HouseholdCounts(total=total, active=active, with_agents=with_agents),
        consumption={r.value: Use(today=today[r], last_30_days=month[r]) for r in Resource},
        gcc=GccFigures(
            total_supply=supply,
            in_wallets=supply - in_treasury - in_reserve - held,
            in_treasury=in_treasury,
            in_market_reserve=in_reserve,
            held=held,
        ),
        deposits=MoneyFigures(count=deposits, amount=deposited),
        withdrawals=MoneyFigures(count=withdrawals, amount=withdrawn),
        trades=TradeFigures(count=trades, volume=volume),
        as_of=now.astimezone(UTC),
    )


async def _use_since(session: AsyncSession, since: datetime) -> dict[Resource, Decimal]:
    return {
        r: _plain(await repository.total_between(session, f"consumption_{r.value.lower()}", since))
        for r in Resource
    }


# The event log: notable events and operators' actions, from the events contexts publish.


async def log_event(session: AsyncSession, event: DomainEvent) -> None:
    """Append `event` to the log if it is a notable one (the outbox hands each event to this
    consumer once)."""
    line = event.log_line()
    if line is None:
        return
    session.add(
        LoggedEvent(
            id=uuid.uuid4(),
            kind=event.topic,
            actor_id=line.actor_id,
            summary=line.summary[:1000],
            subject_type=line.subject_type,
            subject_id=line.subject_id,
            amount=line.amount.quantize(KOPECK) if line.amount is not None else None,
            data=event.model_dump(mode="json"),
            occurred_at=utcnow(),
        )
    )  # flushed with the batch's other entries when the consumer commits (one statement)


LINKS = {
    "user": "/admin/users/{}",
    "deposit": "/admin/bank",
    "withdrawal": "/admin/bank",
    "bank_alert": "/admin/bank",
    "tariff": "/admin/tariffs",
    "dead_letter": "/admin/telemetry",
    "settlement_run": "/admin/settlements",
    "proposal": "/treasury",
    "treasury": "/treasury",
    "parameter": "/treasury",
    "chain_operation": "/api/token/operations/{}",
}


async def events(
    session: AsyncSession,
    *,
    kind: str | None,
    actor_id: uuid.UUID | None,
    start: datetime | None,
    end: datetime | None,
    page: PageRequest,
) -> tuple[list[EventOut], int]:
    """The event log, newest first."""
    if start is not None and end is not None and end <= start:
        raise ValidationFailed("`to` must be after `from`", code="bad_range")
    rows, total = await fetch_page(
        session,
        repository.events_query(kind=kind, actor_id=actor_id, start=start, end=end),
        page,
    )
    actors = await identity.users_by_id(session, {r.actor_id for r in rows if r.actor_id})
    out = []
    for row in rows:
        actor = actors.get(row.actor_id) if row.actor_id else None
        pattern = LINKS.get(row.subject_type or "")
        out.append(
            EventOut(
                id=row.id,
                kind=row.kind,
                summary=row.summary,
                actor_id=row.actor_id,
                actor_email=actor.email if actor else None,
                subject_type=row.subject_type,
                subject_id=row.subject_id,
                link=pattern.format(row.subject_id) if pattern and row.subject_id else None,
                amount=row.amount,
                occurred_at=row.occurred_at,
            )
        )
    return out, total


# Series: hourly points kept in analytics' own table, computed from the sources' public
# functions (and the event log) — refreshed as time goes by, rebuildable from scratch.

FLOWS = {
    "consumption_e": "kWh",
    "consumption_h": "kWh",
    "consumption_w": "m3",
    "deposits": "RUB",
    "withdrawals": "RUB",
    "trades_volume": "GCC",
    "registrations": "accounts",
}
"""What happened in each bucket (summed into days)."""
STOCKS: dict[str, tuple[tuple[tuple[str, int], ...], str]] = {
    "gcc_supply": ((("gcc_net", 1),), "GCC"),
    "reserves": ((("deposits", 1), ("withdrawals", -1)), "RUB"),
}
"""Levels at each bucket's end, from the hourly changes of stored metrics (with their sign):
GCC minted less burned; roubles of confirmed deposits less paid withdrawals."""
METRICS = sorted([*FLOWS, *STOCKS])
POINT_QUANTUM = Decimal("0.000001")
MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=366)}
HOUR = timedelta(hours=1)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def _hourly(
    session: AsyncSession, handle: chain.ChainHandle | None, start: datetime, end: datetime
) -> dict[tuple[str, datetime], Decimal]:
    values: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
    for hour, resource, quantity in await telemetry.billed_use_by_hour(session, start, end):
        values[(f"consumption_{resource.value.lower()}", hour)] += quantity
    for metric, kind in (("deposits", DEPOSITS), ("withdrawals", WITHDRAWALS)):
        for at, amount in await repository.amounts_by_kind(session, kind, start, end):
            values[(metric, _hour(at))] += amount
    for hour, volume in (await market.traded_by_hour(session, start, end)).items():
        values[("trades_volume", hour)] += volume
    for hour, count in (await identity.registrations_by_hour(session, start, end)).items():
        values[("registrations", hour)] += count
    if handle is not None:
        net = await chain.net_minted_by_hour(session, handle.chain_id, "GCC", start, end)
        for hour, units in net.items():
            values[("gcc_net", hour)] += chain.from_base_units(units)
    return values


async def refresh(
    session: AsyncSession, handle: chain.ChainHandle | None, *, start: datetime, end: datetime
) -> int:
    """Compute the points of every hour in [start, end) again. Returns how many are stored."""
    start, end = _hour(start), _hour(end)
    if end <= start:
        return 0
    points = [
        SeriesPoint(metric=metric, hour=hour, value=value.quantize(POINT_QUANTUM))
        for (metric, hour), value in (await _hourly(session, handle, start, end)).items()
        if value
    ]
    await repository.replace_points(session, start, end, points)
    return len(points)


async def rebuild(
    session: AsyncSession, handle: chain.ChainHandle | None, *, now: datetime | None = None
) -> int:
    """Throw every point away and compute them again from the sources, a day at a time."""
    end = _hour(now or utcnow()) + HOUR
    firsts = [
        f
        for f in (
            await identity.first_registration(session),
            await telemetry.first_use_hour(session),
            await repository.first_logged(session),
        )
        if f is not None
    ]
    await repository.clear_points(session)
    stored = 0
    day = _hour(min(firsts)) if firsts else end
    while day < end:
        stored += await refresh(session, handle, start=day, end=min(day + timedelta(days=1), end))
        day += timedelta(days=1)
    return stored


async def series(
    session: AsyncSession,
    *,
    metric: str,
    granularity: str,
    start: datetime,
    end: datetime,
) -> SeriesOut:
    """A metric per hour or per UTC day over [start, end), every bucket present (0 when
    nothing happened); a stock (gcc_supply) is its level at each bucket's end."""
    return await cached_read(
        session,
        "analytics.series",
        SERIES_TOPICS,
        (metric, granularity, start, end),
        lambda: _series(session, metric=metric, granularity=granularity, start=start, end=end),
    )


async def _series(
    session: AsyncSession, *, metric: str, granularity: str, start: datetime, end: datetime
) -> SeriesOut:
    if metric not in METRICS:
        raise ValidationFailed(
            f"unknown metric {metric!r}: one of {', '.join(METRICS)}", code="unknown_metric"
        )
    if granularity not in MAX_SPAN:
        raise ValidationFailed("granularity is hour or day", code="bad_granularity")
    step = HOUR if granularity == "hour" else timedelta(days=1)
    first = _hour(start) if granularity == "hour" else _day(start)
    if end <= start:
        raise ValidationFailed("`to` must be after `from`", code="bad_range")
    if end - first > MAX_SPAN[granularity]:
        raise ValidationFailed(
            f"a {granularity} series spans at most {MAX_SPAN[granularity].days} days",
            code="range_too_long",
        )
    parts, unit = STOCKS.get(metric, (((metric, 1),), FLOWS.get(metric, "")))
    buckets: dict[datetime, Decimal] = {}
    t = first
    while t < end:
        buckets[t] = Decimal(0)
        t += step
    level = Decimal(0)
    for stored, sign in parts:
        for hour, value in await repository.points(session, stored, first, t):
            buckets[hour if granularity == "hour" else _day(hour)] += sign * value
        if metric in STOCKS:
            level += sign * await repository.total_before(session, stored, first)
    if metric in STOCKS:
        for key in buckets:
            level += buckets[key]
            buckets[key] = level
    return SeriesOut(
        metric=metric,
        granularity=granularity,
        unit=unit,
        points=[
            SeriesPointOut(t=k, value=v.normalize() if v else Decimal(0))
            for k, v in buckets.items()
        ],
    )


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros, and never in exponent notation (120, not 1.2E+2)."""
    return Decimal(f"{value.normalize():f}") if value else Decimal(0)


def _day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

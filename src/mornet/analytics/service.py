"""The household dashboard: each own household at a glance, the wallet, what prepaid units
are worth in days, the last moves — read from the contexts' public services, never their
tables."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.analytics.schemas import (
    DashboardOut,
    GccFigures,
    HouseholdCounts,
    HouseholdGlance,
    MoneyFigures,
    SummaryOut,
    TradeFigures,
    Use,
    WalletGlance,
)
from mornet.bank import service as bank
from mornet.chain import service as chain
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import TOKENS
from mornet.cost import service as cost
from mornet.db import utcnow
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.market import service as market
from mornet.resources import Resource
from mornet.telemetry import service as telemetry
from mornet.wallets import service as wallets
from mornet.wallets.history import history_out

TRAILING = timedelta(days=7)
DAY_PLACES = Decimal("0.1")


async def dashboard(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> DashboardOut:
    now = now or utcnow()
    glances: list[HouseholdGlance] = []
    daily_use: dict[str, Decimal] = defaultdict(Decimal)
    for detail in await households.list_own_households(session, owner=actor):
        household = detail.household
        today = await telemetry.today(session, actor=actor, household_id=household.id)
        _, lines = await cost.month_so_far(session, actor=actor, household_id=household.id, now=now)
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
    spendable = await wallets.available_of(session, handle, [wallet], TOKENS)
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
            held=await wallets.held_tokens(session, wallet),
            prepaid_days_left=days_left,
        ),
        transactions=await history_out(session, wallet, limit=10),
    )


async def summary(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    treasury: str,
    now: datetime | None = None,
) -> SummaryOut:
    """The platform at a glance for operators; the GCC figures are read from the chain."""
    live = handle
    if live is None:
        raise ChainUnavailable()
    now = now or utcnow()
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = await telemetry.platform_use_since(session, midnight)
    month = await telemetry.platform_use_since(session, now - timedelta(days=30))
    total, active, with_agents = await households.household_counts(session)
    supply = chain.from_base_units(await live.total_supply("GCC"))

    async def at(address: str) -> Decimal:
        return chain.from_base_units(await live.balance_of("GCC", address))

    in_treasury = await at(treasury)
    in_reserve = await at(market.MARKET_RESERVE)
    held = await at(bank.ESCROW_ADDRESS)
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

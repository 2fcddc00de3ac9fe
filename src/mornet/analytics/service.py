"""The household dashboard: each own household at a glance, the wallet, what prepaid units
are worth in days, the last moves — read from the contexts' public services, never their
tables."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.access import Actor
from mornet.analytics.schemas import DashboardOut, HouseholdGlance, WalletGlance
from mornet.chain import service as chain
from mornet.chain.schemas import TOKENS
from mornet.cost import service as cost
from mornet.db import utcnow
from mornet.households import service as households
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

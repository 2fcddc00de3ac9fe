from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from mornet.wallets.schemas import HistoryEntryOut


class HouseholdGlance(BaseModel):
    """One household: power now, use today and this month, and this month's cost so far."""

    household_id: uuid.UUID
    name: str
    region: str
    power_w: Decimal | None
    """The latest electricity reading's power (None before any)."""
    today: dict[str, Decimal]
    """Use per resource since local midnight (kWh, m³)."""
    month: dict[str, Decimal]
    """Use per resource this month (of the region's time zone)."""
    month_cost: dict[str, Decimal]
    """RUB per resource this month so far, and `total`."""
    daily_average: dict[str, Decimal]
    """Use per day over the trailing 7 days."""


class WalletGlance(BaseModel):
    available: dict[str, Decimal]
    """What can be spent now: the balance less moves in flight and holds."""
    held: dict[str, Decimal]
    prepaid_days_left: dict[str, Decimal | None]
    """E, H, W: available units over the trailing 7-day average daily use of all your
    households (None when there is no use to divide by)."""


class DashboardOut(BaseModel):
    as_of: datetime
    households: list[HouseholdGlance]
    wallet: WalletGlance
    transactions: list[HistoryEntryOut]
    """The last ten moves of the wallet."""


class HouseholdCounts(BaseModel):
    total: int
    active: int
    with_agents: int


class Use(BaseModel):
    today: Decimal
    """Since midnight UTC."""
    last_30_days: Decimal


class GccFigures(BaseModel):
    """Read from the chain (`source: "chain"`), so anyone can check the circulation."""

    source: str = "chain"
    total_supply: Decimal
    in_wallets: Decimal
    """Everything not at one of the platform's own addresses below."""
    in_treasury: Decimal
    in_market_reserve: Decimal
    held: Decimal
    """In the bank's withdrawal escrow, on its way out as roubles."""


class MoneyFigures(BaseModel):
    count: int
    amount: Decimal
    """RUB."""


class TradeFigures(BaseModel):
    count: int
    volume: Decimal
    """GCC traded on the order books."""


class SummaryOut(BaseModel):
    users: int
    households: HouseholdCounts
    consumption: dict[str, Use]
    gcc: GccFigures
    deposits: MoneyFigures
    withdrawals: MoneyFigures
    trades: TradeFigures
    as_of: datetime


class SeriesPointOut(BaseModel):
    t: datetime
    """The bucket's start (UTC)."""
    value: Decimal


class SeriesOut(BaseModel):
    metric: str
    granularity: str
    unit: str
    points: list[SeriesPointOut]


class EventOut(BaseModel):
    id: uuid.UUID
    kind: str
    summary: str
    actor_id: uuid.UUID | None
    actor_email: str | None
    subject_type: str | None
    subject_id: str | None
    link: str | None
    """Where the object is shown (a page), when it has one."""
    amount: Decimal | None
    occurred_at: datetime

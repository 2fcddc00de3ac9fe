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

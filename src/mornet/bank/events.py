"""What the bank context tells the others."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from mornet.outbox import DomainEvent


class DepositConfirmed(DomainEvent):
    """The bank confirmed a deposit: its roubles are held, so its GCC is due (once)."""

    topic: ClassVar[str] = "bank.deposit.confirmed"

    deposit_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal
    """RUB, and so GCC (1 GCC = 1 RUB)."""

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


class DepositRefunded(DomainEvent):
    """The bank gave a deposit's roubles back after its GCC was minted: that GCC is no
    longer backed and is burned (or, if already spent, recorded as a debt)."""

    topic: ClassVar[str] = "bank.deposit.refunded"

    deposit_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal


class WithdrawalPaid(DomainEvent):
    """The bank paid a withdrawal out to the card: its escrowed GCC is burned (once)."""

    topic: ClassVar[str] = "bank.withdrawal.paid"

    withdrawal_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal


class WithdrawalRejected(DomainEvent):
    """The bank rejected a withdrawal's payout: its escrowed GCC goes back to the user."""

    topic: ClassVar[str] = "bank.withdrawal.rejected"

    withdrawal_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal

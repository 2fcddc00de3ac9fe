"""What the bank context tells the others."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from mornet.outbox import DomainEvent, LogLine


class DepositConfirmed(DomainEvent):
    """The bank confirmed a deposit: its roubles are held, so its GCC is due (once)."""

    topic: ClassVar[str] = "bank.deposit.confirmed"

    deposit_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal
    """RUB, and so GCC (1 GCC = 1 RUB)."""

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"deposit of {self.amount} RUB confirmed by the bank",
            subject_type="deposit",
            subject_id=str(self.deposit_id),
            amount=self.amount,
        )


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

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"withdrawal of {self.amount} RUB paid to a card",
            subject_type="withdrawal",
            subject_id=str(self.withdrawal_id),
            amount=self.amount,
        )


class WithdrawalRejected(DomainEvent):
    """The bank rejected a withdrawal's payout: its escrowed GCC goes back to the user."""

    topic: ClassVar[str] = "bank.withdrawal.rejected"

    withdrawal_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal


class AlertRaised(DomainEvent):
    """Something about the bank needs an operator (a notification that does not match, a
    refund after the GCC was spent, …)."""

    topic: ClassVar[str] = "bank.alert.raised"

    alert_id: uuid.UUID
    kind: str
    message: str

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"bank alert ({self.kind}): {self.message}",
            subject_type="bank_alert",
            subject_id=str(self.alert_id),
        )

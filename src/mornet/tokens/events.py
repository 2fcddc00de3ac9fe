"""What the token engine tells the other contexts."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from mornet.outbox import DomainEvent, LogLine


class TokensAdjusted(DomainEvent):
    """An operator minted or burned E, H, W or GCM by hand."""

    topic: ClassVar[str] = "tokens.adjusted"

    operation_id: uuid.UUID
    kind: str
    token: str
    account: str
    amount: Decimal
    by: uuid.UUID | None

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"{self.kind} of {self.amount} {self.token} for {self.account}",
            actor_id=self.by,
            subject_type="chain_operation",
            subject_id=str(self.operation_id),
            amount=self.amount,
        )


class SettlementRan(DomainEvent):
    """A settlement run settled household periods (or paid arrears)."""

    topic: ClassVar[str] = "tokens.settlement.ran"

    run_id: uuid.UUID
    settled: int
    households: int
    paid_gcc: Decimal
    arrears_gcc: Decimal

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"settled {self.settled} period(s) of {self.households} household(s): "
            f"{self.paid_gcc} GCC paid, {self.arrears_gcc} GCC owed after",
            subject_type="settlement_run",
            subject_id=str(self.run_id),
            amount=self.paid_gcc,
        )

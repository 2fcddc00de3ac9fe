"""What chain tells the other contexts: a requested move became final."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from mornet.outbox import DomainEvent, LogLine


class OperationFinished(DomainEvent):
    """A token operation is final: `confirmed` (it happened on chain, once) or `failed` (it
    never will). The requester finds its own move by the idempotency key it chose."""

    topic: ClassVar[str] = "chain.operation.finished"

    operation_id: uuid.UUID
    idempotency_key: str
    token: str
    kind: str
    status: Literal["confirmed", "failed"]
    tx_hash: str | None = None
    error: str | None = None

    def log_line(self) -> LogLine | None:
        if self.status == "confirmed":
            return None  # routine; only a failure is notable
        return LogLine(
            summary=f"chain {self.kind} of {self.token or 'a call'} failed "
            f"({self.idempotency_key}): {self.error or 'no reason given'}",
            subject_type="chain_operation",
            subject_id=str(self.operation_id),
        )

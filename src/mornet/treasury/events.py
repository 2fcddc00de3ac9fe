"""What the treasury tells the other contexts: every governance step, for the event log."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from mornet.outbox import DomainEvent, LogLine


class ParameterSet(DomainEvent):
    """An admin set a parameter (before a treasury governs them), or an executed proposal
    changed it (`by` None)."""

    topic: ClassVar[str] = "treasury.parameter.set"

    name: str
    value: Decimal
    by: uuid.UUID | None

    def log_line(self) -> LogLine | None:
        how = "set" if self.by else "changed by an executed proposal:"
        return LogLine(
            summary=f"{how} {self.name} = {self.value}",
            actor_id=self.by,
            subject_type="parameter",
            subject_id=self.name,
        )


class TreasuryCreated(DomainEvent):
    topic: ClassVar[str] = "treasury.created"

    treasury_id: uuid.UUID
    owners: list[str]
    threshold: int
    by: uuid.UUID | None

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"started creating the treasury: {self.threshold} of {len(self.owners)} owners",
            actor_id=self.by,
            subject_type="treasury",
            subject_id=str(self.treasury_id),
        )


class ProposalChanged(DomainEvent):
    """A proposal was made, voted on, or decided (`what`: proposed, confirmed, rejected a
    vote against, executed, replaced, stale, rejected, failed)."""

    topic: ClassVar[str] = "treasury.proposal.changed"

    proposal_id: uuid.UUID
    kind: str
    nonce: int
    what: str
    by: uuid.UUID | None = None
    detail: str = ""

    def log_line(self) -> LogLine | None:
        detail = f": {self.detail}" if self.detail else ""
        return LogLine(
            summary=f"{self.kind} proposal at nonce {self.nonce} {self.what}{detail}",
            actor_id=self.by,
            subject_type="proposal",
            subject_id=str(self.proposal_id),
        )

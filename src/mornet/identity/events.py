"""What identity tells the other contexts."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mornet.outbox import DomainEvent, LogLine


class UserRegistered(DomainEvent):
    topic: ClassVar[str] = "identity.user.registered"

    user_id: uuid.UUID
    role: str

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"a new {self.role} account registered",
            subject_type="user",
            subject_id=str(self.user_id),
        )


class UserBlockChanged(DomainEvent):
    """An operator blocked or unblocked an account."""

    topic: ClassVar[str] = "identity.user.block_changed"

    user_id: uuid.UUID
    blocked: bool
    by: uuid.UUID

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary="blocked an account" if self.blocked else "unblocked an account",
            actor_id=self.by,
            subject_type="user",
            subject_id=str(self.user_id),
        )

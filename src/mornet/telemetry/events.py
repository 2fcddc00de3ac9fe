"""What telemetry tells the other contexts."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mornet.outbox import DomainEvent, LogLine


class MessageDeadLettered(DomainEvent):
    """A telemetry message was refused and kept with the reason."""

    topic: ClassVar[str] = "telemetry.message.dead_lettered"

    dead_letter_id: uuid.UUID
    topic_name: str
    reason: str

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"telemetry message on {self.topic_name} refused: {self.reason}",
            subject_type="dead_letter",
            subject_id=str(self.dead_letter_id),
        )

"""What the tariff oracle tells the other contexts."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from mornet.outbox import DomainEvent, LogLine


class TariffPublished(DomainEvent):
    topic: ClassVar[str] = "tariffs.tariff.published"

    tariff_id: uuid.UUID
    region: str
    resource: str
    price: Decimal
    valid_from: datetime
    by: uuid.UUID | None

    def log_line(self) -> LogLine | None:
        return LogLine(
            summary=f"published a {self.resource} tariff for {self.region}: {self.price} RUB "
            f"from {self.valid_from.isoformat()}",
            actor_id=self.by,
            subject_type="tariff",
            subject_id=str(self.tariff_id),
        )

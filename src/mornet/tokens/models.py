from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, utcnow


class PlatformParameter(Base):
    """A governed number of the economic model (GCM_rate, …), kept as an exact decimal string.
    Set by admins now, by treasury proposals later."""

    __tablename__ = "platform_parameters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)

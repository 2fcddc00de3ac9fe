from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class UserStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class User(UUIDPrimaryKey, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased on the way in, so uniqueness is case-insensitive."""
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(String(16), default=Role.USER)
    status: Mapped[UserStatus] = mapped_column(String(16), default=UserStatus.ACTIVE)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped to revoke every token issued before (password change)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_blocked(self) -> bool:
        return self.status == UserStatus.BLOCKED

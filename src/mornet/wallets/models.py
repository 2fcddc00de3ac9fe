from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, utcnow


class Wallet(Base):
    """A user's custodial account on chain. The platform relays its moves, so it never
    needs gas."""

    __tablename__ = "wallets"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    """Checksummed EOA address."""
    encrypted_key: Mapped[bytes] = mapped_column(LargeBinary)
    """AES-256-GCM(nonce ‖ ciphertext) of the private key; never leaves the service layer."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

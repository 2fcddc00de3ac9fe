from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


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


class Hold(UUIDPrimaryKey, Base):
    """Tokens of a wallet set aside for something that may still take them (an open market
    order): counted by every balance check, so they cannot be spent twice. `units` is what is
    still held (base units, 10^-18 token, as a decimal string); 0 once released or taken."""

    __tablename__ = "wallet_holds"
    __table_args__ = (Index("ix_wallet_holds_user_token_open", "user_id", "token", "is_open"),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    token: Mapped[str] = mapped_column(String(8))
    units: Mapped[str] = mapped_column(String(80))
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    """What the hold is for, e.g. `market-order:<id>`."""
    is_open: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

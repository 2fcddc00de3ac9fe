from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class PlatformParameter(Base):
    """A governed number of the economic model (gcm_rate, market_spread), kept as an exact
    decimal string. Admins set it until a treasury exists; from then on it is a copy of the
    value on chain, which only an executed proposal changes."""

    __tablename__ = "platform_parameters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)


class TreasuryStatus(StrEnum):
    CREATING = "creating"
    ACTIVE = "active"
    FAILED = "failed"


class Treasury(UUIDPrimaryKey, Base):
    """The DAO treasury of one chain: a Safe proxy, the contracts it relies on, and how far
    its creation got (each step's chain operations are named by `step_keys`)."""

    __tablename__ = "treasuries"

    chain_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    status: Mapped[TreasuryStatus] = mapped_column(String(16), default=TreasuryStatus.CREATING)
    step: Mapped[int] = mapped_column(Integer, default=1)
    step_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    owners: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Checksummed addresses, as last read from the Safe."""
    operators: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """Owner address → user id, for the owners that are operator accounts of the platform."""
    threshold: Mapped[int] = mapped_column(Integer)
    salt_nonce: Mapped[str] = mapped_column(String(80))
    safe: Mapped[str | None] = mapped_column(String(42), default=None)
    singleton: Mapped[str | None] = mapped_column(String(42), default=None)
    proxy_factory: Mapped[str | None] = mapped_column(String(42), default=None)
    fallback_handler: Mapped[str | None] = mapped_column(String(42), default=None)
    multi_send: Mapped[str | None] = mapped_column(String(42), default=None)
    parameters: Mapped[str | None] = mapped_column(String(42), default=None)
    """The governed parameters' contract."""
    error: Mapped[str | None] = mapped_column(String(1000), default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ProposalStatus(StrEnum):
    OPEN = "open"
    EXECUTING = "executing"
    """Confirmed by the threshold; its execution is on its way to the chain."""
    EXECUTED = "executed"
    REJECTED = "rejected"
    """Too many owners voted against for it to reach the threshold."""
    REPLACED = "replaced"
    """Another proposal with the same nonce was executed."""
    STALE = "stale"
    """The Safe's nonce passed this one's without it."""
    FAILED = "failed"
    """Its execution reverted (e.g. the Safe lacks the tokens): the nonce is still free."""


class Proposal(UUIDPrimaryKey, Base):
    """A Safe transaction proposed to the owners, in the shape of Safe's transaction service:
    what it does (`to`, `value`, `data`, `operation`), its nonce and its SafeTx hash."""

    __tablename__ = "treasury_proposals"
    __table_args__ = (Index("ix_treasury_proposals_treasury_nonce", "treasury_id", "nonce"),)

    treasury_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("treasuries.id"))
    kind: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The request as proposed (token, to, amount; name, value; …), for people to read."""
    description: Mapped[str] = mapped_column(Text, default="")
    to: Mapped[str] = mapped_column(String(42))
    value: Mapped[str] = mapped_column(String(80), default="0")
    data: Mapped[str] = mapped_column(Text)
    operation: Mapped[int] = mapped_column(Integer, default=0)
    nonce: Mapped[int] = mapped_column(BigInteger)
    safe_tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    status: Mapped[ProposalStatus] = mapped_column(
        String(16), default=ProposalStatus.OPEN, index=True
    )
    proposed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    operation_key: Mapped[str | None] = mapped_column(String(200), default=None)
    """The chain operation that executes it, once the threshold is reached."""
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    error: Mapped[str | None] = mapped_column(String(1000), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ProposalVote(Base):
    """One owner's confirmation (with its signature of the SafeTx hash) or rejection; an
    owner votes once per proposal."""

    __tablename__ = "treasury_votes"

    proposal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("treasury_proposals.id"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(42), primary_key=True)
    approve: Mapped[bool] = mapped_column()
    signature: Mapped[str | None] = mapped_column(String(200), default=None)
    submitted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from mornet.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class ChainDeployment(Base):
    """Where a token contract lives on one chain."""

    __tablename__ = "chain_deployments"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token: Mapped[str] = mapped_column(String(8), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    tx_hash: Mapped[str] = mapped_column(String(66))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OperationKind(StrEnum):
    MINT = "mint"
    BURN = "burn"
    TRANSFER = "transfer"
    CALL = "call"
    """Any other transaction of the operator key (a Safe's execution, a deployment, an
    owner-only call): `call_to`/`call_data` say what it is; `items` the token moves it
    causes, if any, so histories and reconciliation see them."""


class OperationStatus(StrEnum):
    QUEUED = "queued"
    """Recorded; not signed yet."""
    SENT = "sent"
    """Signed with a nonce and (being) broadcast; the raw transaction is kept for retries."""
    CONFIRMED = "confirmed"
    FAILED = "failed"


class ChainOperation(UUIDPrimaryKey, Base):
    """The outbox: every on-chain move is written here first, under a unique idempotency key,
    then signed and sent by the one submitter of its signing key."""

    __tablename__ = "chain_operations"
    __table_args__ = (Index("ix_chain_operations_signer_status", "chain_id", "signer", "status"),)

    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the request's content: the same key with other content is refused."""
    chain_id: Mapped[int] = mapped_column(BigInteger)
    token: Mapped[str] = mapped_column(String(8))
    kind: Mapped[OperationKind] = mapped_column(String(16))
    batch_id: Mapped[str] = mapped_column(String(66), unique=True)
    """Keccak of the idempotency key; the contract executes a batch id at most once."""
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """[{"from", "to", "amount"}]: addresses (from for burn/transfer, to for mint/transfer)
    and amounts as decimal strings of base units (10^-18 token)."""
    status: Mapped[OperationStatus] = mapped_column(String(16), default=OperationStatus.QUEUED)
    signer: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int | None] = mapped_column(BigInteger, default=None)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None, index=True)
    raw_tx: Mapped[str | None] = mapped_column(Text, default=None)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000), default=None)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    call_to: Mapped[str | None] = mapped_column(String(42), default=None)
    """A call's contract (None with `call_data`: a contract creation)."""
    call_data: Mapped[str | None] = mapped_column(Text, default=None)
    created_address: Mapped[str | None] = mapped_column(String(42), default=None)
    """The contract a creation made, from its receipt."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class SubmitterLease(Base):
    """Who may sign with a key right now: one submitter per signing key and chain, across
    every process, or nonces would collide."""

    __tablename__ = "chain_submitter_leases"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    signer: Mapped[str] = mapped_column(String(42), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChainOperationParty(Base):
    """Which addresses an operation touches, for wallet histories."""

    __tablename__ = "chain_operation_parties"

    operation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chain_operations.id"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(42), primary_key=True, index=True)

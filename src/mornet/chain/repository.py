"""Every SQL query of the chain context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.models import (
    ChainDeployment,
    ChainOperation,
    ChainOperationParty,
    OperationKind,
    OperationStatus,
)


async def deployments(session: AsyncSession, chain_id: int) -> Sequence[ChainDeployment]:
    query = select(ChainDeployment).where(ChainDeployment.chain_id == chain_id)
    return (await session.scalars(query)).all()


async def operation_by_key(session: AsyncSession, key: str) -> ChainOperation | None:
    return await session.scalar(select(ChainOperation).where(ChainOperation.idempotency_key == key))


async def statuses_by_key(session: AsyncSession, keys: Sequence[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = await session.execute(
        select(ChainOperation.idempotency_key, ChainOperation.status).where(
            ChainOperation.idempotency_key.in_(keys)
        )
    )
    return {key: str(status) for key, status in rows.all()}


async def operation(session: AsyncSession, operation_id: uuid.UUID) -> ChainOperation | None:
    return await session.get(ChainOperation, operation_id)


async def operations_in_status(
    session: AsyncSession, *, chain_id: int, signer: str, status: OperationStatus, limit: int
) -> Sequence[ChainOperation]:
    query = (
        select(ChainOperation)
        .where(
            ChainOperation.chain_id == chain_id,
            ChainOperation.signer == signer,
            ChainOperation.status == status,
        )
        .order_by(ChainOperation.nonce, ChainOperation.created_at, ChainOperation.id)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def has_open_operations(session: AsyncSession, *, chain_id: int, signer: str) -> bool:
    query = select(ChainOperation.id).where(
        ChainOperation.chain_id == chain_id,
        ChainOperation.signer == signer,
        ChainOperation.status.in_([OperationStatus.QUEUED, OperationStatus.SENT]),
    )
    return await session.scalar(query.limit(1)) is not None


async def highest_nonce(session: AsyncSession, *, chain_id: int, signer: str) -> int | None:
    query = select(func.max(ChainOperation.nonce)).where(
        ChainOperation.chain_id == chain_id, ChainOperation.signer == signer
    )
    value = await session.scalar(query)
    return int(value) if value is not None else None


async def operations_of_address(
    session: AsyncSession, address: str, *, limit: int
) -> Sequence[ChainOperation]:
    query = (
        select(ChainOperation)
        .join(ChainOperationParty, ChainOperationParty.operation_id == ChainOperation.id)
        .where(ChainOperationParty.address == address)
        .order_by(ChainOperation.created_at.desc(), ChainOperation.id)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def open_operations_of_address(
    session: AsyncSession, address: str, token: str
) -> Sequence[ChainOperation]:
    query = (
        select(ChainOperation)
        .join(ChainOperationParty, ChainOperationParty.operation_id == ChainOperation.id)
        .where(
            ChainOperationParty.address == address,
            ChainOperation.token == token,
            ChainOperation.status.in_([OperationStatus.QUEUED, OperationStatus.SENT]),
        )
    )
    return (await session.scalars(query)).all()


async def open_operations(session: AsyncSession) -> Sequence[ChainOperation]:
    """Every operation not final yet (queued or sent)."""
    query = select(ChainOperation).where(
        ChainOperation.status.in_([OperationStatus.QUEUED, OperationStatus.SENT])
    )
    return (await session.scalars(query)).all()


async def fail_queued(
    session: AsyncSession,
    *,
    requested_by: uuid.UUID,
    kind: OperationKind,
    reason: str,
    finished_at: datetime,
) -> Sequence[ChainOperation]:
    """Fail what is still queued, in one conditional update (a row the submitter signed
    meanwhile stays as it is). Returns the failed operations."""
    failed = await session.scalars(
        update(ChainOperation)
        .where(
            ChainOperation.requested_by == requested_by,
            ChainOperation.kind == kind,
            ChainOperation.status == OperationStatus.QUEUED,
        )
        .values(status=OperationStatus.FAILED, error=reason, finished_at=finished_at)
        .returning(ChainOperation)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return failed.all()


async def operations_on_chain(session: AsyncSession, chain_id: int) -> Sequence[ChainOperation]:
    """Every operation of this chain that is not failed (confirmed or still in flight)."""
    query = select(ChainOperation).where(
        ChainOperation.chain_id == chain_id, ChainOperation.status != OperationStatus.FAILED
    )
    return (await session.scalars(query)).all()


async def has_moves_of_token(session: AsyncSession, chain_id: int, token: str) -> bool:
    """Whether any move of `token` on this chain is confirmed or in flight."""
    query = (
        select(ChainOperation.id)
        .where(
            ChainOperation.chain_id == chain_id,
            ChainOperation.token == token,
            ChainOperation.status != OperationStatus.FAILED,
        )
        .limit(1)
    )
    return (await session.scalar(query)) is not None


async def finished_between(
    session: AsyncSession, chain_id: int, token: str, start: datetime | None, end: datetime
) -> Sequence[ChainOperation]:
    """Confirmed mints and burns of `token` that became final in [start, end) (from the
    beginning when `start` is None)."""
    query = select(ChainOperation).where(
        ChainOperation.chain_id == chain_id,
        ChainOperation.token == token,
        ChainOperation.status == OperationStatus.CONFIRMED,
        ChainOperation.kind.in_([OperationKind.MINT, OperationKind.BURN]),
        ChainOperation.finished_at < end,
    )
    if start is not None:
        query = query.where(ChainOperation.finished_at >= start)
    return (await session.scalars(query)).all()

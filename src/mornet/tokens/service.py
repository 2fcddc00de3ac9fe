"""Token engine rules: admin/internal mint and burn through the outbox, and GCM."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal, localcontext

from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import service as chain
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import DECIMALS, OperationKind, OperationOut
from mornet.db import utcnow
from mornet.errors import Conflict, NotFound, ValidationFailed
from mornet.tokens.models import PlatformParameter
from mornet.wallets import service as wallets

GCM_RATE = "gcm_rate"
GCM_QUANTUM = Decimal(1).scaleb(-DECIMALS)


BANK_BACKED = frozenset({"GCC"})
"""Tokens that exist only against roubles held by the bank."""


class GccIsBankBacked(Conflict):
    code = "gcc_is_bank_backed"

    def __init__(self) -> None:
        super().__init__(
            "GCC is minted only for a confirmed bank deposit and burned only for a payout or "
            "a refund; an operator adjusts E, H, W and GCM"
        )


async def operator_move(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    kind: OperationKind,
    token: str,
    account: str,
    amount: Decimal,
    idempotency_key: str,
    actor_id: uuid.UUID | None,
) -> tuple[OperationOut, bool]:
    """An operator's mint or burn: an adjustment of E, H, W or GCM. Never GCC, whose supply
    must equal the roubles the bank holds."""
    if token in BANK_BACKED:
        raise GccIsBankBacked()
    return await move(
        session,
        handle,
        kind=kind,
        token=token,
        account=account,
        amount=amount,
        idempotency_key=idempotency_key,
        actor_id=actor_id,
    )


async def move(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    kind: OperationKind,
    token: str,
    account: str,
    amount: Decimal,
    idempotency_key: str,
    actor_id: uuid.UUID | None,
) -> tuple[OperationOut, bool]:
    """Mint to or burn from one account, exactly once per idempotency key."""
    if handle is None:
        raise ChainUnavailable()
    if kind not in (OperationKind.MINT, OperationKind.BURN):
        raise ValidationFailed("only mint and burn are token engine moves")
    address = await wallets.resolve_address(session, account)
    units = chain.to_base_units(amount)
    single = (
        chain.Move(amount=units, receiver=address)
        if kind == OperationKind.MINT
        else chain.Move(amount=units, sender=address)
    )
    operation, created = await chain.request(
        session,
        handle,
        token=token,
        kind=kind,
        moves=[single],
        idempotency_key=f"token:{idempotency_key}",
        requested_by=actor_id,
    )
    return OperationOut.of(operation), created


async def get_parameter(session: AsyncSession, name: str) -> PlatformParameter:
    parameter = await session.get(PlatformParameter, name)
    if parameter is None:
        raise NotFound(f"no parameter {name!r}", code="parameter_not_found")
    return parameter


async def set_parameter(
    session: AsyncSession, name: str, value: Decimal, *, actor_id: uuid.UUID | None
) -> PlatformParameter:
    parameter = await get_parameter(session, name)
    if value <= 0:
        raise ValidationFailed(f"{name} must be positive")
    parameter.value = str(value)
    parameter.updated_at = utcnow()
    parameter.updated_by = actor_id
    await session.flush()
    return parameter


async def gcm_for_cost(session: AsyncSession, cost_total: Decimal) -> Decimal:
    """GCM = cost_total / GCM_rate, exact to the token's 18 places (half-up)."""
    rate = Decimal((await get_parameter(session, GCM_RATE)).value)
    with localcontext() as context:
        context.prec = 80
        return (cost_total / rate).quantize(GCM_QUANTUM, rounding=ROUND_HALF_UP)

"""REST routes of the token engine: mint, burn, operations, settlements."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from fastapi import APIRouter, status

from mornet.chain import service as chain
from mornet.chain.dependencies import ChainDep
from mornet.chain.schemas import OperationKind, OperationOut
from mornet.db import utcnow
from mornet.dependencies import SessionDep, SettingsDep
from mornet.errors import answers
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.pagination import Page, PageParams, page_of
from mornet.tokens import service
from mornet.tokens.models import Settlement
from mornet.tokens.schemas import (
    AdjustmentOut,
    SettlementOut,
    SettlementRunOut,
    SettlementRunSummary,
    TokenMoveRequest,
)
from mornet.treasury import service as treasury

router = APIRouter(prefix="/api", tags=["tokens"])


async def _move(
    kind: OperationKind,
    body: TokenMoveRequest,
    admin: AdminUser,
    session: SessionDep,
    handle: ChainDep,
) -> OperationOut:
    operation, _ = await service.operator_move(
        session,
        handle,
        kind=kind,
        token=body.token,
        account=body.account,
        amount=body.amount,
        idempotency_key=body.idempotency_key,
        actor_id=admin.id,
    )
    return operation


@router.post("/token/mint", status_code=status.HTTP_202_ACCEPTED, responses=answers(404, 409))
async def mint(
    body: TokenMoveRequest, admin: AdminUser, session: SessionDep, handle: ChainDep
) -> OperationOut:
    """Queue a mint; the same idempotency key answers with the same operation."""
    return await _move(OperationKind.MINT, body, admin, session, handle)


@router.post("/token/burn", status_code=status.HTTP_202_ACCEPTED, responses=answers(404, 409))
async def burn(
    body: TokenMoveRequest, admin: AdminUser, session: SessionDep, handle: ChainDep
) -> OperationOut:
    """Queue a burn; the same idempotency key answers with the same operation."""
    return await _move(OperationKind.BURN, body, admin, session, handle)


@router.get("/token/operations/{operation_id}")
async def operation(operation_id: uuid.UUID, _: AdminUser, session: SessionDep) -> OperationOut:
    return OperationOut.of(await chain.get_operation(session, operation_id))


async def settlements_out(
    session: SessionDep, settlements: Sequence[Settlement]
) -> list[SettlementOut]:
    statuses = await service.settlement_statuses(session, settlements)
    carried = await service.adjustments_in(session, settlements)
    derived = {"status", "adjustments"}
    return [
        SettlementOut.model_validate(
            {
                **{c: getattr(s, c) for c in SettlementOut.model_fields if c not in derived},
                "status": status,
                "adjustments": [
                    AdjustmentOut.model_validate(a, from_attributes=True) for a in carried[s.id]
                ],
            }
        )
        for s, status in zip(settlements, statuses, strict=True)
    ]


@router.post("/admin/settlements/run", responses=answers(503))
async def run_settlements(
    _: AdminUser, session: SessionDep, handle: ChainDep, settings: SettingsDep
) -> SettlementRunOut:
    """Settle every household period that is closed and not settled yet (idempotent: run it
    again and only what became due since is settled)."""
    settled = await service.settle_due(
        session,
        handle,
        now=utcnow(),
        length=settings.settlement_period,
        grace=timedelta(minutes=settings.settlement_grace_minutes),
        treasury=await treasury.revenue_address(session, handle, settings.treasury_address),
    )
    return SettlementRunOut(
        settled=len(settled), settlements=await settlements_out(session, settled)
    )


@router.get("/admin/settlements/runs")
async def settlement_runs(
    _: AdminUser, session: SessionDep, page: PageParams
) -> Page[SettlementRunSummary]:
    """Settlement runs, newest first: counts, GCC paid, arrears left, chain status."""
    runs, total = await service.settlement_runs(session, page)
    statuses = await service.settlement_statuses(session, runs)
    failures = await service.failed_operations(session, runs)
    items = [
        SettlementRunSummary.model_validate(
            {
                **{
                    c: getattr(run, c)
                    for c in SettlementRunSummary.model_fields
                    if c not in {"status", "failed_operations"}
                },
                "status": status,
                "failed_operations": failed,
            }
        )
        for run, status, failed in zip(runs, statuses, failures, strict=True)
    ]
    return page_of(items, total, page)


@router.get("/households/{household_id}/settlements", responses=answers(404))
async def household_settlements(
    household_id: uuid.UUID, user: CurrentUser, session: SessionDep, page: PageParams
) -> Page[SettlementOut]:
    found, total = await service.settlements_of(
        session, actor=user, household_id=household_id, page=page
    )
    return page_of(await settlements_out(session, found), total, page)


@router.get("/households/{household_id}/settlements/{settlement_id}", responses=answers(404))
async def household_settlement(
    household_id: uuid.UUID, settlement_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> SettlementOut:
    settlement = await service.get_settlement(
        session, actor=user, household_id=household_id, settlement_id=settlement_id
    )
    [out] = await settlements_out(session, [settlement])
    return out

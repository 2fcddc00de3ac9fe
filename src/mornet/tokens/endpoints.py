"""REST routes of the token engine: mint, burn, operations, platform parameters."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from mornet.chain import service as chain
from mornet.chain.dependencies import ChainDep
from mornet.chain.schemas import OperationKind, OperationOut
from mornet.dependencies import SessionDep
from mornet.errors import answers
from mornet.identity.auth import AdminUser
from mornet.tokens import service
from mornet.tokens.schemas import ParameterOut, ParameterUpdate, TokenMoveRequest

router = APIRouter(tags=["tokens"])


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


@router.get("/admin/parameters/{name}")
async def read_parameter(name: str, _: AdminUser, session: SessionDep) -> ParameterOut:
    parameter = await service.get_parameter(session, name)
    return ParameterOut(name=parameter.name, value=parameter.value, updated_at=parameter.updated_at)


@router.put("/admin/parameters/{name}")
async def update_parameter(
    name: str, body: ParameterUpdate, admin: AdminUser, session: SessionDep
) -> ParameterOut:
    parameter = await service.set_parameter(session, name, body.value, actor_id=admin.id)
    return ParameterOut(name=parameter.name, value=parameter.value, updated_at=parameter.updated_at)

"""REST routes of the token engine and the chain."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from mornet.chain import service as chain
from mornet.chain.models import OperationKind
from mornet.dependencies import AdminUser, RuntimeDep, SessionDep
from mornet.tokens import service
from mornet.tokens.schemas import (
    ChainOut,
    OperationOut,
    ParameterOut,
    ParameterUpdate,
    TokenMoveRequest,
)
from mornet.wallets.service import ChainUnavailable

router = APIRouter(tags=["tokens"])


@router.get("/chain")
async def chain_info(runtime: RuntimeDep) -> ChainOut:
    if runtime.chain is None:
        raise ChainUnavailable()
    return ChainOut(
        chain_id=runtime.chain.chain_id,
        rpc_url=runtime.chain.client.public_rpc_url,
        operator=runtime.chain.signer,
        contracts=runtime.chain.contracts,
    )


async def _move(
    kind: OperationKind,
    body: TokenMoveRequest,
    admin: AdminUser,
    session: SessionDep,
    runtime: RuntimeDep,
) -> OperationOut:
    operation, _ = await service.move(
        session,
        runtime.chain,
        kind=kind,
        token=body.token,
        account=body.account,
        amount=body.amount,
        idempotency_key=body.idempotency_key,
        actor_id=admin.id,
    )
    return OperationOut.of(operation)


@router.post("/token/mint", status_code=status.HTTP_202_ACCEPTED)
async def mint(
    body: TokenMoveRequest, admin: AdminUser, session: SessionDep, runtime: RuntimeDep
) -> OperationOut:
    """Queue a mint; the same idempotency key answers with the same operation."""
    return await _move(OperationKind.MINT, body, admin, session, runtime)


@router.post("/token/burn", status_code=status.HTTP_202_ACCEPTED)
async def burn(
    body: TokenMoveRequest, admin: AdminUser, session: SessionDep, runtime: RuntimeDep
) -> OperationOut:
    """Queue a burn; the same idempotency key answers with the same operation."""
    return await _move(OperationKind.BURN, body, admin, session, runtime)


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

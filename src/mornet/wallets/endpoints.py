"""REST routes of the wallets context: always the caller's own wallet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from mornet.chain.dependencies import ChainDep
from mornet.chain.schemas import OperationOut
from mornet.dependencies import SessionDep
from mornet.errors import answers
from mornet.identity.auth import CurrentUser
from mornet.wallets import service
from mornet.wallets.history import history_out
from mornet.wallets.schemas import HistoryEntryOut, TransferRequest, WalletOut

router = APIRouter(prefix="/api", tags=["wallets"])


@router.get("/wallet")
async def read_wallet(user: CurrentUser, session: SessionDep, chain: ChainDep) -> WalletOut:
    return await service.wallet_shown(session, chain, user.id)


@router.get("/wallet/transactions")
async def wallet_transactions(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[HistoryEntryOut]:
    wallet = await service.wallet_of(session, user.id)
    return await history_out(session, wallet, limit=limit)


@router.post("/wallet/transfers", status_code=status.HTTP_202_ACCEPTED, responses=answers(404, 409))
async def transfer(
    body: TransferRequest, user: CurrentUser, session: SessionDep, chain: ChainDep
) -> OperationOut:
    return await service.transfer(
        session,
        chain,
        user_id=user.id,
        token=body.token,
        to=body.to,
        amount=body.amount,
        idempotency_key=body.idempotency_key,
    )

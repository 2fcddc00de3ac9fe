"""REST routes of the bank context."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mornet.bank import service
from mornet.bank.dependencies import BankDep
from mornet.bank.schemas import DepositOut, DepositRequest, ReservesOut
from mornet.chain.dependencies import ChainDep
from mornet.dependencies import SessionDep
from mornet.errors import answers, error_body
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.pagination import Page, PageParams, page_of

router = APIRouter(tags=["bank"])


@router.post("/bank/deposits", status_code=status.HTTP_201_CREATED, responses=answers(502, 503))
async def open_deposit(
    body: DepositRequest, user: CurrentUser, session: SessionDep, bank: BankDep
) -> DepositOut:
    """Open a deposit: pay `payment_url` at the bank; GCC arrives once the bank confirms."""
    deposit = await service.open_deposit(session, bank, user_id=user.id, amount=body.amount)
    return DepositOut.model_validate(deposit)


@router.get("/bank/deposits")
async def list_deposits(
    user: CurrentUser, session: SessionDep, page: PageParams
) -> Page[DepositOut]:
    deposits, total = await service.deposits_of(session, user.id, page)
    return page_of([DepositOut.model_validate(d) for d in deposits], total, page)


@router.get("/bank/deposits/{deposit_id}")
async def read_deposit(deposit_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> DepositOut:
    deposit = await service.get_deposit(session, actor=user, deposit_id=deposit_id)
    return DepositOut.model_validate(deposit)


@router.get("/admin/bank/reserves")
async def reserves(_: AdminUser, session: SessionDep, handle: ChainDep) -> ReservesOut:
    """GCC's supply on chain against the roubles the bank holds; `ok` when they agree."""
    return await service.reserves(session, handle)


@router.post(
    "/bank/notifications/tbank",
    response_model=None,
    responses={
        200: {
            "description": "`OK`: handled; the bank stops resending",
            "content": {"text/plain": {"schema": {"type": "string", "enum": ["OK"]}}},
        },
        **answers(403),
    },
)
async def tbank_notification(
    session: SessionDep, bank: BankDep, payload: dict[str, Any] = Body(...)
) -> Response:
    """The bank's payment notifications. `OK` only once the notification is stored."""
    try:
        await service.receive_notification(session, bank, payload)
    except service.NotificationRefused as refused:
        await session.commit()  # keep the alert; the refusal is the answer
        return JSONResponse(error_body(refused.code, refused.message), refused.status)
    await session.commit()
    return PlainTextResponse("OK")

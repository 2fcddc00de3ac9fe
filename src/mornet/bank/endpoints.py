"""REST routes of the bank context."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mornet.bank import runtime as bank_runtime
from mornet.bank import service
from mornet.bank.dependencies import BankDep, NotificationDeskDep
from mornet.bank.schemas import (
    AlertOut,
    BankCheckOut,
    CardOut,
    DepositOut,
    DepositRequest,
    ReservesOut,
    WithdrawalOut,
    WithdrawalRequest,
)
from mornet.chain.dependencies import ChainDep
from mornet.db import unit_of_work
from mornet.dependencies import PlatformDep, SessionDep
from mornet.errors import answers, error_body
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.pagination import Page, PageParams, page_of

router = APIRouter(prefix="/api", tags=["bank"])


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


@router.post("/bank/cards", status_code=status.HTTP_201_CREATED, responses=answers(502, 503))
async def bind_card(user: CurrentUser, session: SessionDep, bank: BankDep) -> CardOut:
    """Start binding a card for payouts: open `form_url` (the bank's card form). The card is
    `pending` until the bank reports it bound; only its masked number is ever stored here."""
    card = await service.bind_card(session, bank, user_id=user.id)
    return CardOut.model_validate(card)


@router.get("/bank/cards")
async def list_cards(user: CurrentUser, session: SessionDep) -> list[CardOut]:
    return [CardOut.model_validate(c) for c in await service.cards_of(session, user.id)]


@router.post(
    "/bank/withdrawals",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "A retry: the withdrawal made with this key"},
        **answers(404, 409, 503),
    },
)
async def withdraw(
    body: WithdrawalRequest,
    user: CurrentUser,
    session: SessionDep,
    bank: BankDep,
    chain: ChainDep,
    response: Response,
) -> WithdrawalOut:
    """Withdraw GCC as roubles to a bound card: the GCC is held in escrow at once (a short
    balance is a 422 with nothing held), paid out by the bank, then burned — or returned if
    the bank rejects the payout."""
    withdrawal, created = await service.open_withdrawal(
        session,
        bank,
        chain,
        user_id=user.id,
        amount=body.amount,
        card_id=body.card_id,
        idempotency_key=body.idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return WithdrawalOut.model_validate(withdrawal)


@router.get("/bank/withdrawals")
async def list_withdrawals(
    user: CurrentUser, session: SessionDep, page: PageParams
) -> Page[WithdrawalOut]:
    withdrawals, total = await service.withdrawals_of(session, user.id, page)
    return page_of([WithdrawalOut.model_validate(w) for w in withdrawals], total, page)


@router.get("/bank/withdrawals/{withdrawal_id}")
async def read_withdrawal(
    withdrawal_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> WithdrawalOut:
    withdrawal = await service.get_withdrawal(session, actor=user, withdrawal_id=withdrawal_id)
    return WithdrawalOut.model_validate(withdrawal)


@router.get("/admin/bank/deposits")
async def all_deposits(_: AdminUser, session: SessionDep, page: PageParams) -> Page[DepositOut]:
    deposits, total = await service.all_deposits(session, page)
    return page_of([DepositOut.model_validate(d) for d in deposits], total, page)


@router.get("/admin/bank/withdrawals")
async def all_withdrawals(
    _: AdminUser, session: SessionDep, page: PageParams
) -> Page[WithdrawalOut]:
    withdrawals, total = await service.withdrawals_of(session, None, page)
    return page_of([WithdrawalOut.model_validate(w) for w in withdrawals], total, page)


@router.get("/admin/bank/alerts")
async def bank_alerts(_: AdminUser, session: SessionDep, page: PageParams) -> Page[AlertOut]:
    """What an operator must look at: refused notifications, refunds, failed holds."""
    found, total = await service.alerts(session, page)
    return page_of([AlertOut.model_validate(a) for a in found], total, page)


@router.post("/admin/bank/check", responses=answers(502, 503))
async def check_with_the_bank(
    _: AdminUser, platform: PlatformDep, bank: BankDep, handle: ChainDep
) -> BankCheckOut:
    """Ask the bank now about every deposit without an outcome and every payout in progress,
    then report the reserves."""
    changed, asked = await bank_runtime.check_now(platform.sessions, bank)
    async with unit_of_work(platform.sessions) as session:
        report = await service.reserves(session, handle)
    return BankCheckOut(deposits_changed=changed, payouts_asked=asked, reserves=report)


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
    desk: NotificationDeskDep, payload: dict[str, Any] = Body(...)
) -> Response:
    """The bank's payment notifications. `OK` only once the notification is stored."""
    refused = await desk.receive(payload)
    if refused is not None:  # a refused one's alert is kept: the refusal is the answer
        return JSONResponse(
            error_body(refused.code, refused.message), refused.status, headers=refused.headers
        )
    return PlainTextResponse("OK")

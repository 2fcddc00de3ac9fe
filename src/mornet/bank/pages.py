"""Pages of the bank context: top up (amount → the bank's payment page → back here), withdraw
(bind a card on the bank's form, amount, status), and the operator's bank page (reserves,
deposits, withdrawals, alerts, "check with the bank now")."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.bank import runtime as bank_runtime
from mornet.bank import service
from mornet.bank.dependencies import BankDep
from mornet.bank.schemas import DepositRequest, WithdrawalRequest, WithdrawalStatus
from mornet.chain.dependencies import ChainDep
from mornet.chain.errors import ChainUnavailable
from mornet.dependencies import PlatformDep, SessionDep
from mornet.identity.auth import PageAdmin, PageUser
from mornet.identity.service import User
from mornet.pagination import MAX_LIMIT, PageRequest
from mornet.web.pages import CsrfChecked, form_decimal, redirect, render, submit_form

router = APIRouter(include_in_schema=False)


async def _page(
    request: Request,
    session: SessionDep,
    bank: service.BankGateway,
    user: User,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    deposits, _ = await service.deposits_of(session, user.id, PageRequest(limit=MAX_LIMIT))
    return render(
        request,
        "bank/deposits.html",
        {
            "deposits": deposits,
            "waiting": any(d.status in service.OPEN for d in deposits),
            "form": form or {},
            "error": error,
            "minimum": bank.deposit_min,
            "maximum": bank.deposit_max,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/bank")
async def deposits_page(
    request: Request, user: PageUser, session: SessionDep, bank: BankDep
) -> Response:
    return await _page(request, session, bank, user)


@router.post("/bank/deposits", dependencies=[CsrfChecked])
async def top_up(
    request: Request,
    user: PageUser,
    session: SessionDep,
    bank: BankDep,
    amount: Annotated[str, Form()] = "",
) -> Response:
    async def open_and_pay() -> Response:
        body = DepositRequest(amount=form_decimal("amount", amount))
        deposit = await service.open_deposit(session, bank, user_id=user.id, amount=body.amount)
        assert deposit.payment_url is not None
        return redirect(deposit.payment_url)

    async def refused(message: str, status: int) -> Response:
        return await _page(
            request, session, bank, user, form={"amount": amount}, error=message, status_code=status
        )

    return await submit_form(session, open_and_pay, refused)


WAITING = {WithdrawalStatus.HOLDING, WithdrawalStatus.HELD, WithdrawalStatus.PAYING}


async def _withdrawals_page(
    request: Request,
    session: SessionDep,
    bank: service.BankGateway,
    user: User,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    withdrawals, _ = await service.withdrawals_of(session, user.id, PageRequest(limit=MAX_LIMIT))
    cards = await service.cards_of(session, user.id)
    return render(
        request,
        "bank/withdrawals.html",
        {
            "withdrawals": withdrawals,
            "waiting": any(w.status in WAITING for w in withdrawals),
            "cards": cards,
            "pans": {c.id: c.pan for c in cards},
            "customer_key": await service.customer_key(session, user.id),
            "form": form or {},
            "error": error,
            "request_key": str(uuid.uuid4()),
            "minimum": bank.withdrawal_min,
            "maximum": bank.withdrawal_max,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/bank/withdrawals")
async def withdrawals_page(
    request: Request, user: PageUser, session: SessionDep, bank: BankDep
) -> Response:
    return await _withdrawals_page(request, session, bank, user)


@router.post("/bank/cards", dependencies=[CsrfChecked])
async def bind_card(
    request: Request, user: PageUser, session: SessionDep, bank: BankDep
) -> Response:
    async def to_the_bank() -> Response:
        card = await service.bind_card(session, bank, user_id=user.id)
        return redirect(card.form_url)

    async def refused(message: str, status: int) -> Response:
        return await _withdrawals_page(
            request, session, bank, user, error=message, status_code=status
        )

    return await submit_form(session, to_the_bank, refused)


@router.post("/bank/withdrawals", dependencies=[CsrfChecked])
async def withdraw(
    request: Request,
    user: PageUser,
    session: SessionDep,
    bank: BankDep,
    chain: ChainDep,
    amount: Annotated[str, Form()] = "",
    card_id: Annotated[str, Form()] = "",
    request_key: Annotated[str, Form()] = "",
) -> Response:
    async def hold_and_pay() -> Response:
        body = WithdrawalRequest.model_validate(
            {
                "amount": form_decimal("amount", amount),
                "card_id": card_id,
                "idempotency_key": request_key or str(uuid.uuid4()),
            }
        )
        await service.open_withdrawal(
            session,
            bank,
            chain,
            user_id=user.id,
            amount=body.amount,
            card_id=body.card_id,
            idempotency_key=body.idempotency_key,
        )
        return redirect("/bank/withdrawals")

    async def refused(message: str, status: int) -> Response:
        return await _withdrawals_page(
            request,
            session,
            bank,
            user,
            form={"amount": amount, "card_id": card_id},
            error=message,
            status_code=status,
        )

    return await submit_form(session, hold_and_pay, refused)


async def _admin_page(
    request: Request,
    session: SessionDep,
    chain: ChainDep,
    admin: User,
    *,
    checked: str | None = None,
) -> Response:
    everything = PageRequest(limit=MAX_LIMIT)
    try:
        reserves = await service.reserves(session, chain)
    except ChainUnavailable:
        reserves = None
    deposits, _ = await service.all_deposits(session, everything)
    withdrawals, _ = await service.withdrawals_of(session, None, everything)
    alerts, _ = await service.alerts(session, everything)
    return render(
        request,
        "bank/admin.html",
        {
            "reserves": reserves,
            "deposits": deposits,
            "withdrawals": withdrawals,
            "alerts": alerts,
            "checked": checked,
        },
        user=admin,
    )


@router.get("/admin/bank")
async def admin_bank(
    request: Request, admin: PageAdmin, session: SessionDep, chain: ChainDep
) -> Response:
    return await _admin_page(request, session, chain, admin)


@router.post("/admin/bank/check", dependencies=[CsrfChecked])
async def check_with_the_bank(
    request: Request,
    admin: PageAdmin,
    session: SessionDep,
    platform: PlatformDep,
    bank: BankDep,
    chain: ChainDep,
) -> Response:
    """Ask the bank now about every open deposit and payout, then show the page again."""
    changed, asked = await bank_runtime.check_now(platform.sessions, bank)
    checked = f"Asked the bank: {changed} deposit(s) changed, {asked} payout(s) driven."
    return await _admin_page(request, session, chain, admin, checked=checked)

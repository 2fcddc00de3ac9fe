"""Pages of the bank context: top up (amount → the bank's payment page → back here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.bank import service
from mornet.bank.dependencies import BankDep
from mornet.bank.schemas import DepositRequest
from mornet.dependencies import SessionDep
from mornet.identity.auth import PageUser
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

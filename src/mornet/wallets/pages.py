"""The wallet page: balances, history, and the send form."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.access import Actor
from mornet.chain.dependencies import ChainDep
from mornet.chain.schemas import TOKENS
from mornet.chain.service import ChainHandle
from mornet.dependencies import SessionDep
from mornet.errors import MornetError
from mornet.identity.auth import PageUser
from mornet.wallets import service
from mornet.wallets.history import history_out
from mornet.web.pages import (
    CsrfChecked,
    form_decimal,
    redirect,
    render,
    submit_form,
)

router = APIRouter(include_in_schema=False)


async def _page(
    request: Request,
    session: SessionDep,
    chain: ChainHandle | None,
    user: Actor,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    wallet = await service.wallet_of(session, user.id)
    try:
        balances = await service.balances(chain, wallet.address)
        chain_error = None
    except MornetError as exc:
        balances, chain_error = {}, exc.message
    return render(
        request,
        "wallets/wallet.html",
        {
            "wallet": wallet,
            "balances": balances,
            "held": await service.held_tokens(session, wallet.user_id),
            "chain_error": chain_error,
            "history": await history_out(session, wallet, limit=50),
            "tokens": list(TOKENS),
            "form": form or {},
            "error": error,
            # A fresh key per form view: a double submit of the same form sends once.
            "transfer_key": uuid.uuid4().hex,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/wallet")
async def wallet_page(
    request: Request, user: PageUser, session: SessionDep, chain: ChainDep
) -> Response:
    return await _page(request, session, chain, user)


@router.post("/wallet/transfers", dependencies=[CsrfChecked])
async def send(
    request: Request,
    user: PageUser,
    session: SessionDep,
    chain: ChainDep,
    token: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
) -> Response:
    async def send_tokens() -> Response:
        await service.transfer(
            session,
            chain,
            user_id=user.id,
            token=token.strip().upper(),
            to=to,
            amount=form_decimal("amount", amount),
            idempotency_key=idempotency_key or uuid.uuid4().hex,
        )
        return redirect("/wallet")

    async def refused(message: str, status: int) -> Response:
        form = {"token": token, "to": to, "amount": amount}
        return await _page(
            request, session, chain, user, form=form, error=message, status_code=status
        )

    return await submit_form(session, send_tokens, refused)

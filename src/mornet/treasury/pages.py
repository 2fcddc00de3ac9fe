"""Treasury pages: the Safe (owners, threshold, nonce, tokens), proposals with their progress
and history, the proposal form and owners' confirm/reject buttons. Plain users see the
treasury and its executed proposals, read-only: a DAO is public."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from mornet.chain.dependencies import ChainDep
from mornet.chain.service import ChainHandle
from mornet.dependencies import CipherDep, SessionDep
from mornet.errors import NotFound
from mornet.identity.auth import PageAdmin, PageUser
from mornet.identity.service import User
from mornet.pagination import PageRequest
from mornet.treasury import service
from mornet.treasury.endpoints import proposals_out, treasury_out
from mornet.treasury.schemas import ProposalRequest
from mornet.wallets import service as wallets
from mornet.web.pages import CsrfChecked, form_decimal, redirect, render, submit_form

router = APIRouter(include_in_schema=False)

_PROPOSAL = TypeAdapter[service.ProposalBody](ProposalRequest)


async def _page(
    request: Request,
    session: SessionDep,
    handle: ChainHandle | None,
    user: User,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        treasury = await treasury_out(session, handle)
    except NotFound:
        return render(
            request, "treasury/index.html", {"treasury": None}, user=user, status_code=status_code
        )
    t = await service.treasury_of(session, handle)
    found, _ = await service.proposals(
        session, handle, actor=user, status=None, page=PageRequest(limit=100)
    )
    proposals = await proposals_out(session, t, found)
    mine = None
    if user.is_admin:
        try:
            mine = (await wallets.wallet_of(session, user.id)).address
        except NotFound:
            mine = None
    return render(
        request,
        "treasury/index.html",
        {
            "treasury": treasury,
            "open": [p for p in proposals if p.status in ("open", "executing")],
            "history": [p for p in proposals if p.status not in ("open", "executing")],
            "my_address": mine,
            "is_owner": mine in {o.address for o in treasury.owners},
            "parameters": await service.list_parameters(session),
            "form": form or {},
            "error": error,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/treasury")
async def treasury_page(
    request: Request, user: PageUser, session: SessionDep, handle: ChainDep
) -> Response:
    return await _page(request, session, handle, user)


@router.post("/treasury/proposals", dependencies=[CsrfChecked])
async def propose(
    request: Request,
    user: PageAdmin,
    session: SessionDep,
    handle: ChainDep,
    kind: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    fields = {
        "kind": kind,
        "token": token,
        "to": to,
        "amount": amount,
        "name": name,
        "value": value,
        "action": action,
        "address": address,
        "owner": owner,
        "threshold": threshold,
        "description": description,
    }

    async def propose_it() -> Response:
        given: dict[str, object] = {k: v.strip() for k, v in fields.items() if v.strip()}
        given["kind"] = kind
        if kind == "transfer" and amount:
            given["amount"] = form_decimal("amount", amount)
        if kind == "parameter" and value:
            given["value"] = form_decimal("value", value)
        if kind != "owners":
            given.pop("threshold", None)
        body = _PROPOSAL.validate_python(given)
        await service.propose(session, handle, actor=user, request=body)
        return redirect("/treasury")

    async def refused(message: str, status: int) -> Response:
        return await _page(
            request, session, handle, user, form=fields, error=message, status_code=status
        )

    return await submit_form(session, propose_it, refused)


@router.post("/treasury/proposals/{proposal_id}/{ballot}", dependencies=[CsrfChecked])
async def vote(
    request: Request,
    proposal_id: uuid.UUID,
    ballot: Literal["confirm", "reject"],
    user: PageAdmin,
    session: SessionDep,
    handle: ChainDep,
    cipher: CipherDep,
) -> Response:
    """An owner's Confirm or Reject button."""

    async def cast_vote() -> Response:
        await service.vote(
            session,
            handle,
            cipher,
            proposal_id=proposal_id,
            actor=user,
            approve=ballot == "confirm",
        )
        return redirect("/treasury")

    async def refused(message: str, status: int) -> Response:
        return await _page(request, session, handle, user, error=message, status_code=status)

    return await submit_form(session, cast_vote, refused)

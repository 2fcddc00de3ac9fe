"""Pages of accounts: the registration form and the operator's block/unblock buttons."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.accounts import service
from mornet.dependencies import CipherDep, SessionDep
from mornet.errors import NotFound
from mornet.identity.auth import (
    OptionalPageUser,
    PageAdmin,
    registration_attempt,
    start_page_session,
)
from mornet.identity.schemas import RegisterRequest
from mornet.web.pages import CsrfChecked, is_htmx, redirect, render, submit_form

router = APIRouter(include_in_schema=False)


@router.get("/register")
async def register_form(request: Request, user: OptionalPageUser) -> Response:
    if user is not None:
        return redirect("/households")
    return render(request, "identity/register.html", {"form": {}})


@router.post("/register", dependencies=[CsrfChecked])
async def register(
    request: Request,
    session: SessionDep,
    cipher: CipherDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
) -> Response:
    async def register_and_sign_in() -> Response:
        body = RegisterRequest(email=email, password=password, full_name=full_name)
        user = await service.register_account(
            session,
            cipher,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
            attempt=registration_attempt(request),
        )
        response = redirect("/households")
        start_page_session(response, request, user)
        return response

    async def refused(message: str, status: int) -> Response:
        form = {"email": email, "full_name": full_name}
        return render(
            request, "identity/register.html", {"form": form, "error": message}, status_code=status
        )

    return await submit_form(session, register_and_sign_in, refused)


@router.post("/admin/users/{user_id}/{action}", dependencies=[CsrfChecked])
async def admin_set_blocked(
    request: Request, user_id: uuid.UUID, action: str, admin: PageAdmin, session: SessionDep
) -> Response:
    if action not in ("block", "unblock"):
        raise NotFound("unknown action")
    target = await service.set_account_blocked(
        session, actor=admin, user_id=user_id, blocked=action == "block"
    )
    if is_htmx(request):
        return render(request, "identity/_user_row.html", {"u": target}, user=admin)
    return redirect("/admin/users")

"""Pages of the identity context: home, log in/out, profile, and the admin user list
(registration and blocking are accounts' pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.dependencies import SessionDep
from mornet.errors import MornetError
from mornet.identity import service
from mornet.identity.auth import (
    OptionalPageUser,
    PageAdmin,
    PageUser,
    login_attempt,
    start_page_session,
)
from mornet.identity.schemas import ProfileUpdate
from mornet.pagination import MAX_LIMIT, PageRequest
from mornet.web.pages import (
    CsrfChecked,
    end_session,
    redirect,
    render,
    safe_next,
    submit_form,
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, user: OptionalPageUser) -> Response:
    if user is not None:
        return redirect("/dashboard")
    return render(request, "home.html")


@router.get("/login")
async def login_form(request: Request, user: OptionalPageUser, next: str | None = None) -> Response:
    if user is not None:
        return redirect(safe_next(next))
    return render(request, "identity/login.html", {"form": {}, "next": next or ""})


@router.post("/login", dependencies=[CsrfChecked])
async def login(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        user = await service.authenticate(
            session,
            email=email,
            password=password,
            attempt=login_attempt(request),
        )
    except MornetError as exc:
        response = render(
            request,
            "identity/login.html",
            {"form": {"email": email}, "next": next, "error": exc.message},
            status_code=exc.status,
        )
        end_session(response)
        return response
    signed_in = redirect(safe_next(next))
    start_page_session(signed_in, request, user)
    return signed_in


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(user: OptionalPageUser, session: SessionDep) -> Response:
    # The token stops working on the server too: a copied cookie is worth nothing after this.
    if user is not None:
        await service.end_sessions(session, user)
    response = redirect("/login")
    end_session(response)
    return response


@router.get("/profile")
async def profile(request: Request, user: PageUser) -> Response:
    return render(request, "identity/profile.html", {}, user=user)


@router.post("/profile", dependencies=[CsrfChecked])
async def update_profile(
    request: Request,
    user: PageUser,
    session: SessionDep,
    full_name: Annotated[str, Form()] = "",
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    async def save() -> Response:
        body = ProfileUpdate(
            full_name=full_name or None,
            current_password=current_password or None,
            new_password=new_password or None,
        )
        await service.update_profile(
            session,
            user,
            full_name=body.full_name,
            current_password=body.current_password,
            new_password=body.new_password,
        )
        response = render(request, "identity/profile.html", {"saved": True}, user=user)
        if body.new_password:
            # The password change revoked the old token; keep this browser signed in.
            start_page_session(response, request, user)
        return response

    async def refused(message: str, status: int) -> Response:
        return render(
            request, "identity/profile.html", {"error": message}, user=user, status_code=status
        )

    return await submit_form(session, save, refused)


@router.get("/admin")
async def admin_home(_: PageAdmin) -> Response:
    return redirect("/admin/analytics")


@router.get("/admin/users")
async def admin_users(
    request: Request, admin: PageAdmin, session: SessionDep, search: str | None = None
) -> Response:
    users, total = await service.list_users(
        session, search=search, page=PageRequest(limit=MAX_LIMIT)
    )
    return render(
        request,
        "identity/admin_users.html",
        {"users": users, "total": total, "search": search or ""},
        user=admin,
    )

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.identity.models import User
from mornet.identity.security import encode_access_token
from mornet.runtime import Runtime
from tests.factories import PASSWORD, create_user, login, unique_email, user_with_token


async def _count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_register_creates_a_user_and_never_returns_the_password(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    response = await client.post(
        "/api/auth/register",
        json={
            "email": "Anna.Petrova@Example.com",
            "password": "s3cret-pass",
            "full_name": " Anna ",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "anna.petrova@example.com"
    assert body["full_name"] == "Anna"
    assert body["role"] == "user"
    assert body["status"] == "active"
    assert "password" not in response.text
    assert "hash" not in response.text
    stored = await session.scalar(select(User).where(User.email == "anna.petrova@example.com"))
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "s3cret-pass" not in stored.password_hash


async def test_register_rejects_a_taken_email_case_insensitively(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await create_user(session, email="taken@example.com")
    response = await client.post(
        "/api/auth/register",
        json={"email": "TAKEN@example.com", "password": "another-pass", "full_name": "X"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"
    assert await _count_users(session) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": "long-enough", "full_name": "A"}, "email"),
        ({"email": "a@example.com", "password": "short7!", "full_name": "A"}, "password"),
        ({"email": "a@example.com", "password": "long-enough", "full_name": "  "}, "full_name"),
        ({"email": "a@example.com", "password": "long-enough"}, "full_name"),
    ],
)
async def test_register_rejects_bad_input_with_a_reason(
    client: httpx.AsyncClient, session: AsyncSession, payload: dict[str, str], field: str
) -> None:
    response = await client.post("/api/auth/register", json=payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]
    assert await _count_users(session) == 0


async def test_login_returns_a_bearer_token_that_identifies_the_user(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, email="ivan@example.com")
    response = await client.post(
        "/api/auth/login", json={"email": "Ivan@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)


@pytest.mark.parametrize(
    ("email", "password"),
    [("ivan@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)],
)
async def test_login_refuses_wrong_credentials_without_saying_which(
    client: httpx.AsyncClient, session: AsyncSession, email: str, password: str
) -> None:
    await create_user(session, email="ivan@example.com")
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "invalid_credentials",
        "message": "wrong email or password",
    }


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_forged_expired_and_foreign_tokens_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    user = await create_user(session)
    expired = encode_access_token(
        user_id=user.id,
        token_version=0,
        secret=runtime.secrets.jwt_secret,
        ttl=timedelta(seconds=-5),
    )
    other_key = encode_access_token(
        user_id=user.id, token_version=0, secret="x" * 48, ttl=timedelta(minutes=5)
    )
    unsigned = jwt.encode({"sub": str(user.id), "ver": 0}, key=None, algorithm="none")
    unknown_user = encode_access_token(
        user_id=uuid.uuid4(),
        token_version=0,
        secret=runtime.secrets.jwt_secret,
        ttl=timedelta(minutes=5),
    )
    for token in (expired, other_key, unsigned, unknown_user, "garbage"):
        response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.json()["error"]["code"] == "invalid_token"


async def test_profile_update_changes_the_name(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    response = await client.patch("/api/me", json={"full_name": "Maria Ivanova"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["full_name"] == "Maria Ivanova"
    assert (await client.get("/api/me", headers=headers)).json()["full_name"] == "Maria Ivanova"


async def test_password_change_needs_the_current_password_and_revokes_old_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, headers = await user_with_token(client, session)
    missing = await client.patch(
        "/api/me", json={"new_password": "brand-new-pass"}, headers=headers
    )
    assert missing.status_code == 422
    wrong = await client.patch(
        "/api/me",
        json={"current_password": "not-it-at-all", "new_password": "brand-new-pass"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "wrong_password"
    assert (await client.get("/api/me", headers=headers)).status_code == 200

    changed = await client.patch(
        "/api/me",
        json={"current_password": PASSWORD, "new_password": "brand-new-pass"},
        headers=headers,
    )
    assert changed.status_code == 200
    assert (await client.get("/api/me", headers=headers)).status_code == 401
    assert (
        await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    ).status_code == 401
    await login(client, user.email, "brand-new-pass")


async def test_admin_lists_users_and_a_plain_user_cannot(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin_headers = await user_with_token(client, session, admin=True)
    user, user_headers = await user_with_token(client, session, email=unique_email("plain"))
    listed = await client.get("/api/admin/users", headers=admin_headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 2
    assert str(user.id) in {u["id"] for u in listed.json()["items"]}
    searched = await client.get(
        "/api/admin/users", params={"search": "plain"}, headers=admin_headers
    )
    assert [u["id"] for u in searched.json()["items"]] == [str(user.id)]

    for method, path in [
        ("GET", "/api/admin/users"),
        ("POST", f"/api/admin/users/{user.id}/block"),
        ("POST", f"/api/admin/users/{user.id}/unblock"),
    ]:
        response = await client.request(method, path, headers=user_headers)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "admin_only"
    assert (await client.get("/api/me", headers=user_headers)).json()["status"] == "active"


async def test_blocking_refuses_login_and_kills_issued_tokens_at_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin_headers = await user_with_token(client, session, admin=True)
    user, user_headers = await user_with_token(client, session)
    household = await client.post(
        "/api/households",
        json={"name": "Home", "address": "A", "region": "RU-MOW"},
        headers=user_headers,
    )
    assert household.status_code == 201

    blocked = await client.post(f"/api/admin/users/{user.id}/block", headers=admin_headers)
    assert blocked.status_code == 200
    assert blocked.json()["status"] == "blocked"

    login_attempt = await client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert login_attempt.status_code == 403
    assert login_attempt.json()["error"]["code"] == "user_blocked"
    for method, path, body in [
        ("GET", "/api/me", None),
        ("PATCH", "/api/me", {"full_name": "Changed"}),
        ("GET", "/api/households", None),
        ("POST", "/api/households", {"name": "Second", "address": "B", "region": "RU-MOW"}),
        ("GET", f"/api/households/{household.json()['id']}", None),
    ]:
        response = await client.request(method, path, json=body, headers=user_headers)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "user_blocked"

    admin_view = await client.get("/api/admin/households", headers=admin_headers)
    assert [h["name"] for h in admin_view.json()["items"]] == ["Home"]
    await session.refresh(user)
    assert user.full_name == "Test User"

    unblocked = await client.post(f"/api/admin/users/{user.id}/unblock", headers=admin_headers)
    assert unblocked.json()["status"] == "active"
    assert (await client.get("/api/me", headers=user_headers)).status_code == 200


async def test_an_admin_cannot_block_themself_or_an_unknown_user(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin, headers = await user_with_token(client, session, admin=True)
    self_block = await client.post(f"/api/admin/users/{admin.id}/block", headers=headers)
    assert self_block.status_code == 409
    assert self_block.json()["error"]["code"] == "cannot_block_self"
    unknown = await client.post(f"/api/admin/users/{uuid.uuid4()}/block", headers=headers)
    assert unknown.status_code == 404
    malformed = await client.post("/api/admin/users/not-a-uuid/block", headers=headers)
    assert malformed.status_code == 422


async def test_login_failures_are_limited_per_email_with_retry_after(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    wrong = {"email": user.email, "password": "not-the-password"}
    for _ in range(10):
        answer = await client.post("/api/auth/login", json=wrong)
        assert answer.status_code == 401
    limited = await client.post("/api/auth/login", json=wrong)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    # Even the right password waits: a guesser cannot tell when they hit it.
    right = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert right.status_code == 429


async def test_login_failures_are_limited_per_client_address_across_emails(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    for index in range(10):
        answer = await client.post(
            "/api/auth/login", json={"email": f"guess-{index}@example.com", "password": "x" * 8}
        )
        assert answer.status_code == 401
    limited = await client.post(
        "/api/auth/login", json={"email": "another@example.com", "password": "x" * 8}
    )
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


async def test_a_successful_login_resets_the_count_for_that_email(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    runtime.login_throttle.limit = 3
    user = await create_user(session)
    for _ in range(2):
        assert (
            await client.post("/api/auth/login", json={"email": user.email, "password": "nope"})
        ).status_code == 401
    assert (
        await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    ).status_code == 200
    # From another address (its own count): two more failures are still plain 401s, which
    # they would not be had the email's count survived the successful login.
    other = httpx.ASGITransport(app=client._transport.app, client=("203.0.113.9", 4000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as elsewhere:
        for _ in range(2):
            assert (
                await elsewhere.post(
                    "/api/auth/login", json={"email": user.email, "password": "nope"}
                )
            ).status_code == 401
        third, fourth = [
            await elsewhere.post("/api/auth/login", json={"email": user.email, "password": "no"})
            for _ in range(2)
        ]
        assert (third.status_code, fourth.status_code) == (401, 429)


async def test_registrations_are_limited_per_client_address(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = await _count_users(session)
    for _ in range(10):
        created = await client.post(
            "/api/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "full_name": "Bot"},
        )
        assert created.status_code == 201
    refused = await client.post(
        "/api/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "full_name": "Bot"},
    )
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_attempts"
    assert await _count_users(session) == before + 10


async def test_password_hashing_leaves_the_event_loop_free(
    client: httpx.AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logins hash passwords off the event loop: every verification runs in a worker thread,
    and a timer on the loop loses far less than the hashing takes (on the loop it would lose
    about six hashes' worth)."""
    import threading
    import time

    from mornet.identity import security

    user = await create_user(session)
    hasher = security._hasher
    threads: list[int] = []

    class RecordingHasher:
        def verify(self, password_hash: str, password: str) -> bool:
            threads.append(threading.get_ident())
            return bool(hasher.verify(password_hash, password))

        def __getattr__(self, name: str) -> object:
            return getattr(hasher, name)

    monkeypatch.setattr(security, "_hasher", RecordingHasher())
    started = time.perf_counter()
    security.verify_password_now(user.password_hash, PASSWORD)
    one_hash = time.perf_counter() - started
    threads.clear()
    late: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            tick = loop.time()
            await asyncio.sleep(0.01)
            late.append(loop.time() - tick - 0.01)

    logins = [
        client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        for _ in range(6)
    ]
    answers, _ = await asyncio.gather(asyncio.gather(*logins), ticker())
    assert all(a.status_code == 200 for a in answers)
    assert len(threads) == 6
    assert threading.get_ident() not in threads
    # Measured against this machine's own hash time, so a loaded machine does not fail it.
    assert sum(late) < 3 * one_hash


async def test_logout_revokes_the_token_on_the_server(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user, headers = await user_with_token(client, session)
    assert (await client.get("/api/me", headers=headers)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    after = await client.get("/api/me", headers=headers)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "invalid_token"
    fresh = await login(client, user.email)
    assert (await client.get("/api/me", headers=fresh)).status_code == 200

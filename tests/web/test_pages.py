"""Server-rendered pages: cookie session, CSRF, ownership and admin rules as a browser sees them."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.households.models import Household
from mornet.identity.models import User
from mornet.web.pages import CSRF_COOKIE, SESSION_COOKIE
from tests.factories import PASSWORD, create_user, unique_email


def csrf_from(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def page_login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/login")
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_from(form)}
    )


async def test_register_page_signs_the_user_in_with_a_safe_cookie(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    form = await client.get("/register")
    assert form.status_code == 200
    response = await client.post(
        "/register",
        data={
            "email": "nina@example.com",
            "password": "long-enough",
            "full_name": "Nina",
            "csrf_token": csrf_from(form),
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/households"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    households = await client.get("/households")
    assert households.status_code == 200
    assert "Nina" in households.text


async def test_forms_without_a_matching_csrf_token_are_refused_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await client.get("/register")
    assert client.cookies.get(CSRF_COOKIE)
    payload = {"email": "eve@example.com", "password": "long-enough", "full_name": "Eve"}
    missing = await client.post("/register", data=payload)
    forged = await client.post("/register", data={**payload, "csrf_token": "forged"})
    for response in (missing, forged):
        assert response.status_code == 403
        assert "form expired" in response.text
    assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_pages_need_a_session_and_redirect_to_login(client: httpx.AsyncClient) -> None:
    for path in ("/households", "/profile", "/admin/users"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={path}"


async def test_login_page_errors_and_safe_next(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    wrong = await page_login(client, user.email, "wrong-password")
    assert wrong.status_code == 401
    assert "wrong email or password" in wrong.text
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "next": "//evil.example/steal",
            "csrf_token": csrf_from(form),
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"  # a household lands on its dashboard


async def test_household_pages_create_show_and_provision_an_agent(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await page_login(client, user.email)
    listing = await client.get("/households")
    created = await client.post(
        "/households",
        data={
            "name": "Cottage",
            "address": "Sadovaya 3",
            "region": "RU-SPE",
            "csrf_token": csrf_from(listing),
        },
    )
    assert created.status_code == 303
    detail = await client.get(created.headers["location"])
    assert detail.status_code == 200
    assert "Cottage" in detail.text
    assert "RU-SPE" in detail.text
    assert "6.9100" in detail.text  # the electricity price in force there

    provisioned = await client.post(
        f"{created.headers['location']}/agents",
        data={"name": "Pi", "csrf_token": csrf_from(detail)},
    )
    assert provisioned.status_code == 200
    assert "agent_secret = " in provisioned.text
    assert "Download agent.toml" in provisioned.text
    again = await client.get(created.headers["location"])
    assert "agent_secret = " not in again.text

    bad = await client.post(
        "/households",
        data={"name": "", "address": "x", "region": "RU-SPE", "csrf_token": csrf_from(listing)},
    )
    assert bad.status_code == 422
    assert "name" in bad.text


async def test_another_users_household_page_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_user(session)
    intruder = await create_user(session)
    household = Household(owner_id=owner.id, name="Private", address="A", region_code="RU-MOW")
    session.add(household)
    await session.commit()
    await page_login(client, intruder.email)
    page = await client.get(f"/households/{household.id}")
    assert page.status_code == 404
    assert "Private" not in page.text
    token = csrf_from(await client.get("/households"))
    edit = await client.post(
        f"/households/{household.id}",
        data={"name": "Mine now", "address": "B", "region": "RU-MOW", "csrf_token": token},
    )
    assert edit.status_code == 404
    agent = await client.post(f"/households/{household.id}/agents", data={"csrf_token": token})
    assert agent.status_code == 404
    await session.refresh(household)
    assert household.name == "Private"


async def test_admin_pages_are_for_admins_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await page_login(client, user.email)
    for path in ("/admin/users", "/admin/households", "/admin/tariffs"):
        response = await client.get(path)
        assert response.status_code == 403, path
        assert "operators" in response.text


async def test_admin_blocks_a_user_who_then_loses_pages_and_login(
    client: httpx.AsyncClient, session: AsyncSession, runtime: object
) -> None:
    admin = await create_user(session, admin=True)
    target = await create_user(session, email=unique_email("target"))

    user_client = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with user_client:
        await page_login(user_client, target.email)
        assert (await user_client.get("/households")).status_code == 200

        await page_login(client, admin.email)
        users_page = await client.get("/admin/users")
        assert target.email in users_page.text
        row = await client.post(
            f"/admin/users/{target.id}/block",
            data={"csrf_token": csrf_from(users_page)},
            headers={"HX-Request": "true"},
        )
        assert row.status_code == 200
        assert "Unblock" in row.text
        assert "blocked" in row.text

        refused = await user_client.get("/households")
        assert refused.status_code == 403
        assert "Account blocked" in refused.text
        relogin = await page_login(user_client, target.email)
        assert relogin.status_code == 403
        assert "blocked" in relogin.text


async def test_admin_adds_a_tariff_through_the_page(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await create_user(session, admin=True)
    await page_login(client, admin.email)
    page = await client.get("/admin/tariffs", params={"region": "RU-NVS"})
    assert page.status_code == 200
    added = await client.post(
        "/admin/tariffs",
        data={
            "region": "RU-NVS",
            "resource": "E",
            "price": "6,25",
            "valid_from": "2031-01-01T00:00",
            "note": "order 7",
            "csrf_token": csrf_from(page),
        },
    )
    assert added.status_code == 303
    history = await client.get("/api/tariffs/RU-NVS/history", params={"resource": "E"})
    newest = history.json()[0]
    assert newest["price"] == "6.2500"
    # Entered as Novosibirsk local midnight (UTC+7).
    assert newest["valid_from"] == "2030-12-31T17:00:00Z"
    past = await client.post(
        "/admin/tariffs",
        data={
            "region": "RU-NVS",
            "resource": "E",
            "price": "1",
            "valid_from": "2025-09-01T00:00",
            "csrf_token": csrf_from(page),
        },
    )
    assert past.status_code == 422
    assert "history" in past.text or "past" in past.text


async def test_public_tariff_page_lists_regions(client: httpx.AsyncClient) -> None:
    page = await client.get("/tariffs")
    assert page.status_code == 200
    for code in ("RU-MOW", "RU-SPE", "RU-NVS"):
        assert code in page.text
    assert "sample" in page.text


async def test_wallet_page_shows_balances_and_sends(
    client: httpx.AsyncClient, session: AsyncSession, runtime: object, chain: object
) -> None:
    from decimal import Decimal

    from mornet.chain.models import OperationKind
    from mornet.chain.service import ChainHandle
    from mornet.db import unit_of_work
    from mornet.runtime import Runtime
    from mornet.tokens import service as tokens

    assert isinstance(runtime, Runtime)
    assert isinstance(chain, ChainHandle)
    form = await client.get("/register")
    for email in ("payer@example.com", "payee@example.com"):
        registered = await client.post(
            "/register",
            data={
                "email": email,
                "password": "long-enough",
                "full_name": email,
                "csrf_token": csrf_from(form),
            },
        )
        assert registered.status_code == 303
    async with unit_of_work(runtime.sessions) as writer:
        await tokens.move(
            writer,
            chain,
            kind=OperationKind.MINT,
            token="GCC",
            account="payer@example.com",
            amount=Decimal("9"),
            idempotency_key="page-fund",
            actor_id=None,
        )
    await chain.submitter.drain()
    client.cookies.clear()  # registering signed the browser in as the payee
    await page_login(client, "payer@example.com", "long-enough")
    page = await client.get("/wallet")
    assert page.status_code == 200
    assert 'data-token="GCC">9<' in page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    payload = {
        "token": "GCC",
        "to": "payee@example.com",
        "amount": "2,5",
        "idempotency_key": key.group(1),
        "csrf_token": csrf_from(page),
    }
    sent = await client.post("/wallet/transfers", data=payload)
    assert sent.status_code == 303
    twice = await client.post("/wallet/transfers", data=payload)  # a double click
    assert twice.status_code == 303
    await chain.submitter.drain()
    after = await client.get("/wallet")
    assert 'data-token="GCC">6.5<' in after.text
    assert "confirmed" in after.text
    short = await client.post(
        "/wallet/transfers",
        data={
            **payload,
            "amount": "100",
            "idempotency_key": "other",
            "csrf_token": csrf_from(after),
        },
    )
    assert short.status_code == 422
    assert "not enough GCC" in short.text


async def test_household_page_shows_power_now_and_todays_chart(
    client: httpx.AsyncClient, session: AsyncSession, runtime: object
) -> None:
    from datetime import UTC, datetime, timedelta

    from mornet.db import unit_of_work
    from mornet.runtime import Runtime
    from mornet.telemetry import service as telemetry
    from mornet.telemetry.schemas import NormalisedBatch, NormalisedReading, WireReading

    assert isinstance(runtime, Runtime)
    owner = await create_user(session)
    household = Household(owner_id=owner.id, name="Flat", address="A", region_code="RU-MOW")
    session.add(household)
    await session.commit()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    readings = [
        WireReading.model_validate(
            {
                "device_id": "p",
                "resource": "E",
                "ts": (now - timedelta(minutes=m)).isoformat(),
                "seq": 10 - i,
                "power_w": 1234.5,
                "energy_wh": 5000.0 - 100 * i,
            }
        )
        for i, m in enumerate((0, 1))
    ]
    async with unit_of_work(runtime.sessions) as writer:
        await telemetry.store_batch(
            writer,
            NormalisedBatch(
                household_id=household.id,
                agent_id=None,
                readings=[NormalisedReading.of(r) for r in readings],
            ),
        )
    await page_login(client, owner.email)
    page = await client.get(f"/households/{household.id}")
    assert page.status_code == 200
    assert '<strong id="power-now">1234.5 W</strong>' in page.text
    assert "Electricity today" in page.text
    assert '<svg class="chart"' in page.text
    assert "0.1 kWh" in page.text


async def test_a_household_records_a_meter_reading_from_its_page(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from mornet.telemetry.models import Reading

    owner = await create_user(session)
    household = Household(owner_id=owner.id, name="Flat", address="A", region_code="RU-MOW")
    session.add(household)
    await session.commit()
    await page_login(client, owner.email)
    page = await client.get(f"/households/{household.id}")
    token = csrf_from(page)
    saved = await client.post(
        f"/households/{household.id}/meter-readings",
        data={"resource": "W", "value": "123,456", "csrf_token": token},
    )
    assert saved.status_code == 303
    stored = (await session.scalars(select(Reading))).all()
    assert [(r.device_id, str(r.counter)) for r in stored] == [("meter-W", "123.456000")]
    refused = await client.post(
        f"/households/{household.id}/meter-readings",
        data={"resource": "W", "value": "lots", "csrf_token": token},
    )
    assert refused.status_code == 422
    assert len((await session.scalars(select(Reading))).all()) == 1


async def test_logging_out_makes_a_copied_session_cookie_worthless(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    await page_login(client, user.email)
    stolen = client.cookies["mornet_session"]
    households = await client.get("/households")
    assert households.status_code == 200
    out = await client.post("/logout", data={"csrf_token": csrf_from(households)})
    assert out.status_code == 303
    # Someone who copied the cookie before the logout gets nothing with it.
    client.cookies.set("mornet_session", stolen)
    again = await client.get("/households")
    assert again.status_code in (302, 303)
    assert "/login" in again.headers["location"]
    api = await client.get("/api/me", headers={"Authorization": f"Bearer {stolen}"})
    assert api.status_code == 401


async def test_a_refused_profile_form_changes_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The page re-renders the refusal with a 422, and the request's transaction must not
    then commit the half of the form that was applied before the refusal."""
    user = await create_user(session, full_name="Old Name")
    await page_login(client, user.email)
    form = await client.get("/profile")
    refused = await client.post(
        "/profile",
        data={
            "full_name": "New Name",
            "current_password": "not the password",
            "new_password": "another-long-password",
            "csrf_token": csrf_from(form),
        },
    )
    assert refused.status_code == 422
    assert "the current password is wrong" in refused.text
    assert "Old Name" in refused.text
    user_id = user.id
    session.expire_all()
    stored = await session.get(User, user_id)
    assert stored is not None
    assert stored.full_name == "Old Name"
    assert (await client.get("/profile")).status_code == 200  # still signed in

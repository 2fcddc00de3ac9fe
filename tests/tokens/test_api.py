"""The token engine's API on a real anvil: idempotent mint/burn through the outbox."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.models import ChainOperation
from mornet.chain.service import ChainHandle
from mornet.tokens import service
from tests.factories import user_with_token

UNIT = 10**18


async def _operations(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ChainOperation)) or 0)


async def _register(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": "long-enough", "full_name": "U"}
    )
    assert response.status_code == 201
    return str(response.json()["id"])


async def test_chain_info_lists_the_five_contracts(
    client: httpx.AsyncClient, chain: ChainHandle
) -> None:
    body = (await client.get("/api/chain")).json()
    assert body["chain_id"] == 31337
    assert set(body["contracts"]) == {"GCC", "E", "H", "W", "GCM"}
    assert len(set(body["contracts"].values())) == 5
    for address in body["contracts"].values():
        assert await chain.client.has_code(address)


async def test_mint_is_idempotent_per_key(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user_id = await _register(client, "holder@example.com")
    request = {"token": "E", "account": user_id, "amount": "12.5", "idempotency_key": "deposit-1"}
    first = await client.post("/api/token/mint", json=request, headers=admin)
    assert first.status_code == 202
    assert first.json()["status"] == "queued"
    await chain.submitter.drain()
    again = await client.post("/api/token/mint", json=request, headers=admin)
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "confirmed"
    assert again.json()["tx_hash"].startswith("0x")
    await chain.submitter.drain()

    address = first.json()["items"][0]["to"]
    assert await chain.balance_of("E", address) == 12 * UNIT + UNIT // 2
    assert await chain.total_supply("E") == 12 * UNIT + UNIT // 2
    assert await _operations(session) == 1

    other_content = await client.post(
        "/api/token/mint", json={**request, "amount": "13"}, headers=admin
    )
    assert other_content.status_code == 409
    assert other_content.json()["error"]["code"] == "idempotency_key_reused"
    assert await _operations(session) == 1


async def test_burn_through_the_api_and_a_burn_beyond_the_balance_fails_cleanly(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user_id = await _register(client, "burner@example.com")
    await client.post(
        "/api/token/mint",
        json={
            "token": "E",
            "account": "burner@example.com",
            "amount": "10",
            "idempotency_key": "m",
        },
        headers=admin,
    )
    burn = await client.post(
        "/api/token/burn",
        json={"token": "E", "account": user_id, "amount": "3.25", "idempotency_key": "b1"},
        headers=admin,
    )
    too_much = await client.post(
        "/api/token/burn",
        json={"token": "E", "account": user_id, "amount": "100", "idempotency_key": "b2"},
        headers=admin,
    )
    await chain.submitter.drain()
    done = await client.get(f"/api/token/operations/{burn.json()['id']}", headers=admin)
    assert done.json()["status"] == "confirmed"
    failed = await client.get(f"/api/token/operations/{too_much.json()['id']}", headers=admin)
    assert failed.json()["status"] == "failed"
    assert "burn amount exceeds balance" in failed.json()["error"]
    assert failed.json()["tx_hash"] is None
    address = burn.json()["items"][0]["from"]
    assert await chain.balance_of("E", address) == 6 * UNIT + 3 * UNIT // 4
    assert await chain.total_supply("E") == 6 * UNIT + 3 * UNIT // 4


async def test_bad_token_requests_are_refused_with_reasons_and_queue_nothing(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user_id = await _register(client, "x@example.com")
    base = {"token": "E", "account": user_id, "amount": "1", "idempotency_key": "k"}
    cases = [
        ({"amount": "0.0000000000000000001"}, "validation_error"),
        ({"amount": "1.0000000000000000001"}, "validation_error"),  # never rounded to 1
        ({"amount": "-5"}, "validation_error"),
        ({"amount": "1e60"}, "validation_error"),  # more than 2^256 base units
        ({"amount": "1e999999"}, "validation_error"),
        ({"amount": "1000000000000000000000000000001"}, "validation_error"),
        ({"amount": "NaN"}, "validation_error"),
        ({"amount": "Infinity"}, "validation_error"),
        ({"token": "BTC"}, "validation_error"),  # not one of the schema's tokens
        ({"token": "gcc"}, "validation_error"),
        ({"amount": "1E+2"}, "validation_error"),  # plain decimals only, as documented
        ({"amount": 1.5}, "validation_error"),  # a fraction only as a string: exact
        ({"account": str(uuid.uuid4())}, "wallet_not_found"),
        ({"account": "nobody@example.com"}, "unknown_account"),
        ({"idempotency_key": ""}, "validation_error"),
    ]
    for change, code in cases:
        response = await client.post("/api/token/mint", json={**base, **change}, headers=admin)
        assert 400 <= response.status_code < 500, change
        assert response.json()["error"]["code"] == code, change
    assert await _operations(session) == 0


async def test_amounts_are_written_in_plain_notation(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    user_id = await _register(client, "plain@example.com")
    for amount, key in (("100", "hundred"), ("0.000000000000000001", "one-wei"), (100, "whole")):
        response = await client.post(
            "/api/token/mint",
            json={"token": "E", "account": user_id, "amount": amount, "idempotency_key": key},
            headers=admin,
        )
        assert response.status_code == 202, response.text
        written = response.json()["items"][0]["amount"]
        assert "E" not in written.upper()
        assert Decimal(written) == Decimal(amount)
    assert [
        r.json()["items"][0]["amount"]
        for r in [
            await client.post(
                "/api/token/mint",
                json={"token": "E", "account": user_id, "amount": a, "idempotency_key": k},
                headers=admin,
            )
            for a, k in (("100", "hundred"), ("0.000000000000000001", "one-wei"))
        ]
    ] == ["100", "0.000000000000000001"]


async def test_only_admins_mint_or_burn(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    user, headers = await user_with_token(client, session)
    request = {"token": "E", "account": str(user.id), "amount": "1000", "idempotency_key": "me"}
    assert (await client.post("/api/token/mint", json=request)).status_code == 401
    assert (await client.post("/api/token/mint", json=request, headers=headers)).status_code == 403
    assert (await client.post("/api/token/burn", json=request, headers=headers)).status_code == 403
    assert await _operations(session) == 0


async def test_gcm_is_cost_over_the_governed_rate(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    rate = await service.gcm_rate(session)
    assert service.gcm_for_cost(Decimal("123.45"), rate) == Decimal("123.45")
    _, admin = await user_with_token(client, session, admin=True)
    _, plain = await user_with_token(client, session)
    refused = await client.put("/api/admin/parameters/gcm_rate", json={"value": "3"}, headers=plain)
    assert refused.status_code == 403
    updated = await client.put("/api/admin/parameters/gcm_rate", json={"value": "3"}, headers=admin)
    assert updated.status_code == 200
    assert updated.json()["value"] == "3"
    bad = await client.put("/api/admin/parameters/gcm_rate", json={"value": "0"}, headers=admin)
    assert bad.status_code == 422
    session.expire_all()
    rate = await service.gcm_rate(session)
    assert service.gcm_for_cost(Decimal("1"), rate) == Decimal("0.333333333333333333")
    assert service.gcm_for_cost(Decimal("2"), rate) == Decimal("0.666666666666666667")


async def test_gcc_is_bank_backed_and_no_operator_mints_or_burns_it(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    """GCC is minted only for a confirmed deposit and burned only for a payout or a refund,
    so that its supply always equals the roubles the bank holds."""
    _, admin = await user_with_token(client, session, admin=True)
    user_id = await _register(client, "backed@example.com")
    for route in ("/api/token/mint", "/api/token/burn"):
        refused = await client.post(
            route,
            json={"token": "GCC", "account": user_id, "amount": "1", "idempotency_key": route},
            headers=admin,
        )
        assert refused.status_code == 409, route
        assert refused.json()["error"]["code"] == "gcc_is_bank_backed"
    assert await _operations(session) == 0
    assert await chain.total_supply("GCC") == 0


async def test_each_parameter_keeps_within_its_bounds(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, admin = await user_with_token(client, session, admin=True)
    for name, value in (
        ("market_spread", "1"),
        ("market_spread", "3.5"),
        ("gcm_rate", "1000000000"),
    ):
        refused = await client.put(
            f"/api/admin/parameters/{name}", json={"value": value}, headers=admin
        )
        assert refused.status_code == 422, (name, value, refused.text)
        assert refused.json()["error"]["code"] == "parameter_out_of_bounds"
    fine = await client.put(
        "/api/admin/parameters/market_spread", json={"value": "0.05"}, headers=admin
    )
    assert fine.status_code == 200

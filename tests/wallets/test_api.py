"""Custodial wallets: keys sealed at rest, balances from the chain, relayed transfers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from eth_account import Account
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.models import ChainOperation
from mornet.chain.service import ChainHandle
from mornet.db import unit_of_work
from mornet.identity.models import User
from mornet.runtime import Runtime
from mornet.wallets import service as wallets
from mornet.wallets.models import Wallet

UNIT = 10**18
PASSWORD = "long-enough"


async def register(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    created = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "full_name": email}
    )
    assert created.status_code == 201
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def fund(
    runtime: Runtime, chain: ChainHandle, email: str, amount: str, token: str = "GCC"
) -> None:
    from decimal import Decimal

    from mornet.chain.models import OperationKind
    from mornet.tokens import service as tokens

    async with unit_of_work(runtime.sessions) as session:
        await tokens.move(
            session,
            chain,
            kind=OperationKind.MINT,
            token=token,
            account=email,
            amount=Decimal(amount),
            idempotency_key=f"fund:{email}:{token}:{amount}",
            actor_id=None,
        )
    await chain.submitter.drain()


async def _operations(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ChainOperation)) or 0)


async def test_registration_opens_a_wallet_whose_key_is_sealed(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    await register(client, "anna@example.com")
    user = await session.scalar(select(User).where(User.email == "anna@example.com"))
    assert user is not None
    wallet = await wallets.wallet_of(session, user.id)
    key = wallets.unlock_key(wallet, runtime.cipher)
    assert Account.from_key(key).address == wallet.address
    assert key not in wallet.encrypted_key
    assert key.hex() not in wallet.encrypted_key.hex()

    # A dump of every table, as text, holds no private key (the master key is elsewhere).
    dump = ""
    for table in ("users", "wallets", "households", "edge_agents", "chain_operations"):
        rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
        dump += repr(rows) + "".join(
            value.hex() for row in rows for value in row if isinstance(value, bytes | memoryview)
        )
    assert key.hex() not in dump.lower()


async def test_a_wallet_sealed_for_one_user_does_not_open_for_another(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    await register(client, "a@example.com")
    await register(client, "b@example.com")
    rows = (await session.scalars(select(Wallet))).all()
    first, second = rows[0], rows[1]
    swapped = Wallet(
        user_id=second.user_id, address=second.address, encrypted_key=first.encrypted_key
    )
    with pytest.raises(InvalidTag):
        wallets.unlock_key(swapped, runtime.cipher)


async def test_wallet_shows_balances_from_the_chain_and_never_a_key(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle
) -> None:
    headers = await register(client, "olga@example.com")
    await fund(runtime, chain, "olga@example.com", "25.5")
    await fund(runtime, chain, "olga@example.com", "3", token="W")
    response = await client.get("/api/wallet", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["balances"] == {"GCC": "25.5", "E": "0", "H": "0", "W": "3", "GCM": "0"}
    assert set(body) == {"address", "balances", "held"}  # never a key
    assert body["held"] == {}  # no open order holds anything
    assert await chain.balance_of("GCC", body["address"]) == 25 * UNIT + UNIT // 2


async def test_transfer_by_email_moves_tokens_and_both_histories_show_it(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    alice = await register(client, "alice@example.com")
    bob = await register(client, "bob@example.com")
    await fund(runtime, chain, "alice@example.com", "10")
    sent = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": "bob@example.com", "amount": "4", "idempotency_key": "t1"},
        headers=alice,
    )
    assert sent.status_code == 202
    assert sent.json()["status"] == "queued"
    retry = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": "bob@example.com", "amount": "4", "idempotency_key": "t1"},
        headers=alice,
    )
    assert retry.json()["id"] == sent.json()["id"]
    await chain.submitter.drain()

    alice_wallet = (await client.get("/api/wallet", headers=alice)).json()
    bob_wallet = (await client.get("/api/wallet", headers=bob)).json()
    assert alice_wallet["balances"]["GCC"] == "6"
    assert bob_wallet["balances"]["GCC"] == "4"
    history = (await client.get("/api/wallet/transactions", headers=alice)).json()
    outgoing = [e for e in history if e["kind"] == "transfer"]
    assert [(e["direction"], e["amount"], e["status"], e["counterparty"]) for e in outgoing] == [
        ("out", "4", "confirmed", bob_wallet["address"])
    ]
    assert outgoing[0]["tx_hash"].startswith("0x")
    incoming = (await client.get("/api/wallet/transactions", headers=bob)).json()
    assert [(e["direction"], e["amount"]) for e in incoming] == [("in", "4")]


async def test_a_short_balance_is_refused_and_nothing_is_sent(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    alice = await register(client, "alice@example.com")
    await register(client, "bob@example.com")
    await fund(runtime, chain, "alice@example.com", "10")
    before = await _operations(session)
    first = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": "bob@example.com", "amount": "6", "idempotency_key": "a"},
        headers=alice,
    )
    assert first.status_code == 202
    # 6 of 10 are reserved by the pending transfer: another 6 does not fit.
    second = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": "bob@example.com", "amount": "6", "idempotency_key": "b"},
        headers=alice,
    )
    assert second.status_code == 422
    assert second.json()["error"]["code"] == "insufficient_balance"
    assert "4 available" in second.json()["error"]["message"]
    assert await _operations(session) == before + 1
    await chain.submitter.drain()
    assert (await client.get("/api/wallet", headers=alice)).json()["balances"]["GCC"] == "4"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"to": "nobody@example.com"}, "unknown_account"),
        ({"to": "alice@example.com"}, "self_transfer"),
        ({"amount": "0"}, "validation_error"),
        ({"amount": "1.0000000000000000001"}, "validation_error"),
        ({"amount": "1e999999"}, "validation_error"),
        ({"token": "DOGE"}, "validation_error"),
    ],
)
async def test_bad_transfers_are_refused_with_reasons(
    client: httpx.AsyncClient,
    runtime: Runtime,
    chain: ChainHandle,
    session: AsyncSession,
    change: dict[str, Any],
    code: str,
) -> None:
    alice = await register(client, "alice@example.com")
    await fund(runtime, chain, "alice@example.com", "10")
    before = await _operations(session)
    request = {
        "token": "GCC",
        "to": Account.create().address,
        "amount": "1",
        "idempotency_key": "x",
    }
    response = await client.post("/api/wallet/transfers", json={**request, **change}, headers=alice)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert await _operations(session) == before


async def test_no_one_reaches_another_users_wallet(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    alice = await register(client, "alice@example.com")
    mallory = await register(client, "mallory@example.com")
    await fund(runtime, chain, "alice@example.com", "10")
    alice_address = (await client.get("/api/wallet", headers=alice)).json()["address"]
    mine = (await client.get("/api/wallet", headers=mallory)).json()
    assert mine["address"] != alice_address
    assert mine["balances"]["GCC"] == "0"
    assert (await client.get("/api/wallet/transactions", headers=mallory)).json() == []
    # A transfer always spends the caller's own wallet: there is no "from" to forge.
    stolen = await client.post(
        "/api/wallet/transfers",
        json={
            "token": "GCC",
            "to": Account.create().address,
            "amount": "1",
            "idempotency_key": "s",
            "from": alice_address,
        },
        headers=mallory,
    )
    assert stolen.status_code == 422
    assert stolen.json()["error"]["code"] == "insufficient_balance"
    assert (await client.get("/api/wallet")).status_code == 401
    await chain.submitter.drain()
    assert await chain.balance_of("GCC", alice_address) == 10 * UNIT


async def test_a_blocked_user_cannot_transfer(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    from tests.factories import user_with_token

    alice = await register(client, "alice@example.com")
    await fund(runtime, chain, "alice@example.com", "10")
    _, admin = await user_with_token(client, session, admin=True)
    user = await session.scalar(select(User).where(User.email == "alice@example.com"))
    assert user is not None
    await client.post(f"/api/admin/users/{user.id}/block", headers=admin)
    before = await _operations(session)
    response = await client.post(
        "/api/wallet/transfers",
        json={
            "token": "GCC",
            "to": Account.create().address,
            "amount": "1",
            "idempotency_key": "z",
        },
        headers=alice,
    )
    assert response.status_code == 403
    assert await _operations(session) == before


async def test_no_private_key_in_any_response_or_log(
    client: httpx.AsyncClient,
    runtime: Runtime,
    chain: ChainHandle,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await register(client, "alice@example.com")
    await register(client, "bob@example.com")
    await fund(runtime, chain, "alice@example.com", "5")
    answers = [
        await client.get("/api/wallet", headers=alice),
        await client.get("/api/wallet/transactions", headers=alice),
        await client.post(
            "/api/wallet/transfers",
            headers=alice,
            json={"token": "GCC", "to": "bob@example.com", "amount": "1", "idempotency_key": "k"},
        ),
        await client.post(
            "/graphql",
            headers=alice,
            json={"query": "{ wallet { address balances { token amount } } }"},
        ),
        await client.get("/openapi.json"),
    ]
    # Every call did its work: a refused call would prove nothing about what answers carry.
    assert [a.status_code for a in answers] == [200, 200, 202, 200, 200]
    assert "errors" not in answers[3].json()
    bodies = [a.text for a in answers]
    await chain.submitter.drain()
    keys = []
    for wallet in (await session.scalars(select(Wallet))).all():
        key = wallets.unlock_key(wallet, runtime.cipher).hex()
        keys += [key, "0x" + key]
    keys.append(runtime.secrets.wallet_master_key)
    keys.append(runtime.secrets.chain_operator_key.removeprefix("0x"))
    captured = capsys.readouterr()
    everything = "".join(bodies) + caplog.text + captured.out + captured.err
    for secret in keys:
        assert secret.lower() not in everything.lower()


async def test_graphql_wallet_and_transfer(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle
) -> None:
    alice = await register(client, "alice@example.com")
    await register(client, "bob@example.com")
    await fund(runtime, chain, "alice@example.com", "2")
    mutation = (
        'mutation { transfer(token: "GCC", to: "bob@example.com", amount: "0.5", '
        'idempotencyKey: "g1") { status token amount } }'
    )
    sent = (await client.post("/graphql", json={"query": mutation}, headers=alice)).json()
    assert sent["data"]["transfer"] == {"status": "queued", "token": "GCC", "amount": "0.5"}
    too_much = mutation.replace('"0.5"', '"50"').replace('"g1"', '"g2"')
    refused = (await client.post("/graphql", json={"query": too_much}, headers=alice)).json()
    assert refused["errors"][0]["extensions"]["code"] == "insufficient_balance"
    await chain.submitter.drain()
    query = "{ wallet { balances { token amount } transactions { kind direction amount status } } }"
    wallet = (await client.post("/graphql", json={"query": query}, headers=alice)).json()["data"][
        "wallet"
    ]
    assert {"token": "GCC", "amount": "1.5"} in wallet["balances"]
    assert {
        "kind": "transfer",
        "direction": "out",
        "amount": "0.5",
        "status": "confirmed",
    } in wallet["transactions"]


async def test_users_who_predate_wallets_get_one_at_start(
    session: AsyncSession, runtime: Runtime
) -> None:
    from tests.factories import create_user

    older = [await create_user(session, with_wallet=False) for _ in range(3)]
    assert await session.scalar(select(func.count()).select_from(Wallet)) == 0
    assert await runtime.open_missing_wallets() == 3
    assert await runtime.open_missing_wallets() == 0
    addresses = {(await wallets.wallet_of(session, u.id)).address for u in older}
    assert len(addresses) == 3


async def test_concurrent_transfers_cannot_overspend(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    alice = await register(client, "alice@example.com")
    await register(client, "bob@example.com")
    await fund(runtime, chain, "alice@example.com", "100")
    before = await _operations(session)

    async def send(key: str) -> httpx.Response:
        return await client.post(
            "/api/wallet/transfers",
            json={"token": "GCC", "to": "bob@example.com", "amount": "80", "idempotency_key": key},
            headers=alice,
        )

    answers = await asyncio.gather(send("one"), send("two"))
    assert sorted(r.status_code for r in answers) == [202, 422]
    refused = next(r for r in answers if r.status_code == 422)
    assert refused.json()["error"]["code"] == "insufficient_balance"
    assert await _operations(session) == before + 1
    await chain.submitter.drain()
    balances = (await client.get("/api/wallet", headers=alice)).json()["balances"]
    assert balances["GCC"] == "20"


async def test_a_transfer_does_not_reveal_which_emails_have_accounts(
    client: httpx.AsyncClient, chain: ChainHandle
) -> None:
    prober = await register(client, "prober@example.com")
    await register(client, "known@example.com")

    async def probe(to: str) -> httpx.Response:
        return await client.post(
            "/api/wallet/transfers",
            json={"token": "GCC", "to": to, "amount": "1", "idempotency_key": to},
            headers=prober,
        )

    known, unknown = await probe("known@example.com"), await probe("nobody@example.com")
    assert known.status_code == unknown.status_code == 422
    assert known.json() == unknown.json()
    assert known.json()["error"]["code"] == "insufficient_balance"


async def test_blocking_cancels_the_users_queued_transfers(
    client: httpx.AsyncClient, runtime: Runtime, chain: ChainHandle, session: AsyncSession
) -> None:
    from tests.factories import user_with_token

    alice = await register(client, "alice@example.com")
    await fund(runtime, chain, "alice@example.com", "10")
    receiver = Account.create().address
    queued = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": receiver, "amount": "7", "idempotency_key": "before-block"},
        headers=alice,
    )
    assert queued.status_code == 202
    _, admin = await user_with_token(client, session, admin=True)
    user = await session.scalar(select(User).where(User.email == "alice@example.com"))
    assert user is not None
    assert (
        await client.post(f"/api/admin/users/{user.id}/block", headers=admin)
    ).status_code == 200
    await chain.submitter.drain()
    session.expire_all()
    operation = await session.get(ChainOperation, uuid.UUID(queued.json()["id"]))
    assert operation is not None
    assert operation.status == "failed"
    assert "blocked" in (operation.error or "")
    assert operation.tx_hash is None
    assert await chain.balance_of("GCC", receiver) == 0

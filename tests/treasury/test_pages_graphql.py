"""The treasury over GraphQL and on its page: the same rules as REST."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.runtime import Runtime
from tests.factories import user_with_token
from tests.market.helpers import give
from tests.test_graphql import error_codes, gql
from tests.treasury.helpers import active_treasury, operator, settle, token_balance
from tests.web.test_pages import csrf_from, page_login

pytestmark = pytest.mark.asyncio


async def test_the_treasury_over_graphql(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = [await operator(client, session) for _ in range(3)]
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    await give(runtime, chain, safe, GCC="20")
    receiver, plain = await user_with_token(client, session)

    seen = await gql(
        client, "{ treasury { address threshold nonce balances owners { email } } }", plain
    )
    assert seen["data"]["treasury"]["address"] == safe
    assert seen["data"]["treasury"]["threshold"] == 2
    assert Decimal(seen["data"]["treasury"]["balances"]["GCC"]) == 20
    propose = (
        'mutation($to: String!) { propose(kind: "transfer", token: "GCC", to: $to, '
        'amount: "7", description: "Refund") { id status nonce safeTxHash confirmationsRequired } }'
    )
    refused = await gql(client, propose, plain, to=receiver.email)
    assert error_codes(refused) == ["admin_only"]
    bad = await gql(
        client, 'mutation { propose(kind: "transfer", token: "XYZ") { id } }', ops[0].headers
    )
    assert error_codes(bad) == ["validation_error"]
    made = await gql(client, propose, ops[0].headers, to=receiver.email)
    proposal = made["data"]["propose"]
    assert proposal["status"] == "OPEN"
    assert proposal["confirmationsRequired"] == 2
    confirm = "mutation($id: UUID!) { confirm(proposalId: $id) { status confirmations { owner } } }"
    once = await gql(client, confirm, ops[1].headers, id=proposal["id"])
    assert once["data"]["confirm"]["confirmations"] == [{"owner": ops[1].address}]
    twice = await gql(client, confirm, ops[1].headers, id=proposal["id"])
    assert error_codes(twice) == ["already_voted"]
    done = await gql(client, confirm, ops[2].headers, id=proposal["id"])
    assert done["data"]["confirm"]["status"] == "EXECUTING"
    await settle(runtime, chain)
    listed = await gql(client, "{ proposals { id status txHash } }", plain)
    assert [(p["id"], p["status"]) for p in listed["data"]["proposals"]] == [
        (proposal["id"], "EXECUTED")
    ]
    assert await token_balance(chain, "GCC", safe) == 13


async def test_the_treasury_page_shows_progress_and_owners_confirm_there(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ops = [await operator(client, session) for _ in range(3)]
    none_yet = await page_login(client, ops[0].email)
    assert none_yet.status_code == 303
    assert "No treasury exists yet" in (await client.get("/treasury")).text
    safe = await active_treasury(runtime, chain, [o.email for o in ops], 2)
    await give(runtime, chain, safe, E="5")
    receiver, _ = await user_with_token(client, session)

    page = await client.get("/treasury")
    assert safe in page.text
    assert "2 of 3 owners" in page.text
    refused = await client.post(
        "/treasury/proposals",
        data={
            "csrf_token": csrf_from(page),
            "kind": "transfer",
            "token": "E",
            "to": receiver.email,
            "amount": "lots",
        },
    )
    assert refused.status_code == 422
    assert "not a number" in refused.text
    posted = await client.post(
        "/treasury/proposals",
        data={
            "csrf_token": csrf_from(page),
            "kind": "transfer",
            "token": "E",
            "to": receiver.email,
            "amount": "2",
            "description": "Heat for the school",
        },
    )
    assert posted.status_code == 303
    page = await client.get("/treasury")
    assert "Heat for the school" in page.text
    assert "0 of 2 confirmations" in page.text
    proposal_id = page.text.split('data-proposal="', 1)[1].split('"', 1)[0]
    confirmed = await client.post(
        f"/treasury/proposals/{proposal_id}/confirm", data={"csrf_token": csrf_from(page)}
    )
    assert confirmed.status_code == 303
    assert "1 of 2 confirmations" in (await client.get("/treasury")).text

    client.cookies.clear()
    await page_login(client, ops[1].email)
    page = await client.get("/treasury")
    await client.post(
        f"/treasury/proposals/{proposal_id}/confirm", data={"csrf_token": csrf_from(page)}
    )
    await settle(runtime, chain)
    assert await token_balance(chain, "E", safe) == 3

    # A plain user sees the treasury and the executed proposal, without forms or buttons.
    client.cookies.clear()
    await page_login(client, receiver.email)
    page = await client.get("/treasury")
    assert page.status_code == 200
    assert "Heat for the school" in page.text
    assert "proposal-form" not in page.text
    assert "/confirm" not in page.text
    forbidden = await client.post(
        "/treasury/proposals",
        data={
            "csrf_token": csrf_from(page),
            "kind": "transfer",
            "token": "E",
            "to": receiver.email,
            "amount": "1",
        },
    )
    assert forbidden.status_code == 403

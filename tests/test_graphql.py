"""The one GraphQL schema: same rules as REST (ownership, admin, blocking, validation)."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.households.models import Household
from mornet.identity.models import User
from tests.factories import create_household, user_with_token


async def gql(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def test_me_households_and_tariffs(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user, headers = await user_with_token(client, session)
    home = await create_household(session, owner=user, region="RU-SPE")
    household = {"id": str(home.id), "address": home.address}
    body = await gql(
        client,
        """query($id: UUID!) { me { id email role }
             households { id name region agents { id } }
             household(id: $id) { id address }
             tariffs(region: "RU-SPE", at: "2025-02-01T00:00:00Z") {
               region tariffs { resource price unit currency } } }""",
        headers,
        id=household["id"],
    )
    assert "errors" not in body
    data = body["data"]
    assert data["me"] == {"id": str(user.id), "email": user.email, "role": "user"}
    assert data["households"] == [
        {"id": household["id"], "name": "Home", "region": "RU-SPE", "agents": []}
    ]
    assert data["household"]["address"] == household["address"]
    assert data["tariffs"]["tariffs"][0] == {
        "resource": "E",
        "price": "6.1700",
        "unit": "kWh",
        "currency": "RUB",
    }


async def test_anonymous_and_foreign_access_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner, _ = await user_with_token(client, session)
    _, intruder = await user_with_token(client, session)
    home = await create_household(session, owner=owner)
    household = {"id": str(home.id)}
    anonymous = await gql(client, "{ me { id } }")
    assert error_codes(anonymous) == ["unauthorized"]
    foreign = await gql(
        client, "query($id: UUID!) { household(id: $id) { name } }", intruder, id=household["id"]
    )
    assert error_codes(foreign) == ["household_not_found"]
    assert foreign["data"] is None
    own_list = await gql(client, "{ households { id } }", intruder)
    assert own_list["data"]["households"] == []


async def test_register_and_create_household_mutations(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    registered = await gql(
        client,
        'mutation { register(email: "Olga@Example.com", password: "long-enough", '
        'fullName: "Olga") { id email } }',
    )
    assert registered["data"]["register"]["email"] == "olga@example.com"
    login = await client.post(
        "/api/auth/login", json={"email": "olga@example.com", "password": "long-enough"}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = await gql(
        client,
        'mutation { createHousehold(name: "Flat", address: "Lenina 5", region: "ru-nvs") '
        "{ id region status } }",
        headers,
    )
    assert created["data"]["createHousehold"]["region"] == "RU-NVS"
    assert created["data"]["createHousehold"]["status"] == "active"


async def test_failed_mutations_explain_and_change_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    bad_register = await gql(
        client, 'mutation { register(email: "nope", password: "short", fullName: "X") { id } }'
    )
    assert error_codes(bad_register) == ["validation_error"]
    assert "email" in bad_register["errors"][0]["message"]
    assert "password" in bad_register["errors"][0]["message"]
    bad_region = await gql(
        client,
        'mutation { createHousehold(name: "F", address: "A", region: "RU-ZZZ") { id } }',
        headers,
    )
    assert error_codes(bad_region) == ["unknown_region"]
    assert await session.scalar(select(func.count()).select_from(Household)) == 0
    assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_admin_mutations_need_the_admin_role(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    target, target_headers = await user_with_token(client, session)
    _, admin = await user_with_token(client, session, admin=True)
    starts = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    add_tariff = (
        'mutation($at: DateTime!) { addTariff(region: "RU-MOW", resource: "W", price: "70.5", '
        "validFrom: $at) "
        "{ price resource } }"
    )

    as_user = await gql(client, add_tariff, target_headers, at=starts)
    assert error_codes(as_user) == ["admin_only"]
    as_user_block = await gql(
        client,
        "mutation($id: UUID!) { blockUser(userId: $id) { status } }",
        target_headers,
        id=str(target.id),
    )
    assert error_codes(as_user_block) == ["admin_only"]
    as_user_list = await gql(client, "{ users { id } }", target_headers)
    assert error_codes(as_user_list) == ["admin_only"]

    added = await gql(client, add_tariff, admin, at=starts)
    assert added["data"]["addTariff"] == {"price": "70.5000", "resource": "W"}
    blocked = await gql(
        client,
        "mutation($id: UUID!) { blockUser(userId: $id) { status } }",
        admin,
        id=str(target.id),
    )
    assert blocked["data"]["blockUser"]["status"] == "blocked"
    after_block = await gql(client, "{ me { id } }", target_headers)
    assert error_codes(after_block) == ["user_blocked"]
    unblocked = await gql(
        client,
        "mutation($id: UUID!) { unblockUser(userId: $id) { status } }",
        admin,
        id=str(target.id),
    )
    assert unblocked["data"]["unblockUser"]["status"] == "active"
    unknown = await gql(
        client,
        "mutation($id: UUID!) { blockUser(userId: $id) { status } }",
        admin,
        id=str(uuid.uuid4()),
    )
    assert error_codes(unknown) == ["not_found"]


async def test_syntax_errors_are_reported_not_crashed(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ me { ")
    assert body["errors"][0]["extensions"]["code"] == "graphql_error"


async def test_one_request_registers_at_most_one_account(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    before = int(await session.scalar(select(func.count()).select_from(User)) or 0)
    fields = " ".join(
        f'r{i}: register(email: "bot{i}@example.com", password: "long-enough", fullName: "B")'
        " { id }"
        for i in range(3)
    )
    body = await gql(client, f"mutation {{ {fields} }}")
    assert body["errors"]
    assert "at most once per request" in body["errors"][0]["message"]
    assert body.get("data") is None
    assert int(await session.scalar(select(func.count()).select_from(User)) or 0) == before


async def test_aliases_depth_and_size_are_bounded(client: httpx.AsyncClient) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(30))
    body = await gql(client, f"{{ {aliases} }}")
    assert "aliases" in body["errors"][0]["message"].lower()

    deep = "{ me { id } }"
    for _ in range(12):
        deep = "{ __schema { types { fields { type " + deep[1:-1] + " } } } }"
    body = await gql(client, "query Deep " + deep)
    assert body["errors"]

    huge = "{ " + " ".join("__typename" for _ in range(3000)) + " }"
    body = await gql(client, huge)
    assert "token" in body["errors"][0]["message"].lower()


async def test_graphiql_loads_every_asset_from_this_server(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "unpkg.com" not in page.text
    assets = re.findall(r'(?:src|href)="(/static/graphiql/[^"]+)"\s+integrity="([^"]+)"', page.text)
    assert len(assets) == 7
    for path, integrity in assets:
        served = await client.get(path)
        assert served.status_code == 200, path
        digest = base64.b64encode(hashlib.sha384(served.content).digest()).decode()
        assert integrity == f"sha384-{digest}", path


async def test_the_schema_is_a_federation_subgraph_with_keyed_entities(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    body = await gql(client, "{ _service { sdl } }", headers)
    assert "errors" not in body
    sdl = body["data"]["_service"]["sdl"]
    assert 'type User @key(fields: "id"' in sdl
    assert 'type Household @key(fields: "id"' in sdl
    assert 'type Wallet @key(fields: "address")' in sdl
    assert "@link(url:" in sdl  # Federation 2


ENTITIES = """query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Household { id name }
    ... on User { id email }
  }
}"""


async def test_entity_references_resolve_under_the_ownership_rules(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """`_entities` is a way in like any other query: a router resolving references for
    a caller gets only what that caller may see."""
    owner, owner_headers = await user_with_token(client, session)
    _, intruder = await user_with_token(client, session)
    _, admin_headers = await user_with_token(client, session, admin=True)
    home = await create_household(session, owner=owner, name="Dacha")
    household_ref = {"__typename": "Household", "id": str(home.id)}
    owner_ref = {"__typename": "User", "id": str(owner.id)}

    mine = await gql(client, ENTITIES, owner_headers, representations=[household_ref, owner_ref])
    assert "errors" not in mine
    assert mine["data"]["_entities"] == [
        {"id": str(home.id), "name": "Dacha"},
        {"id": str(owner.id), "email": owner.email},
    ]
    as_admin = await gql(client, ENTITIES, admin_headers, representations=[household_ref])
    assert as_admin["data"]["_entities"] == [{"id": str(home.id), "name": "Dacha"}]

    foreign = await gql(client, ENTITIES, intruder, representations=[household_ref, owner_ref])
    assert sorted(error_codes(foreign)) == ["household_not_found", "not_found"]
    assert foreign["data"] is None or foreign["data"]["_entities"] == [None, None]
    anonymous = await gql(client, ENTITIES, representations=[household_ref])
    assert error_codes(anonymous) == ["unauthorized"]
    garbage = await gql(
        client, ENTITIES, owner_headers, representations=[{"__typename": "User", "id": "x"}]
    )
    assert error_codes(garbage) == ["invalid_reference"]


async def test_a_wallet_reference_resolves_only_to_the_callers_own_wallet(
    client: httpx.AsyncClient, session: AsyncSession, chain: ChainHandle
) -> None:
    _, owner_headers = await user_with_token(client, session)
    _, intruder = await user_with_token(client, session)
    wallet = await gql(client, "{ wallet { address } }", owner_headers)
    address = wallet["data"]["wallet"]["address"]
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
      ... on Wallet { address } } }"""
    reference = [{"__typename": "Wallet", "address": address}]
    own = await gql(client, query, owner_headers, r=reference)
    assert own["data"]["_entities"] == [{"address": address}]
    foreign = await gql(client, query, intruder, r=reference)
    assert error_codes(foreign) == ["wallet_not_found"]

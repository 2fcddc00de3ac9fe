from __future__ import annotations

import hashlib
import tomllib
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.households import service
from mornet.households.models import EdgeAgent, Household
from mornet.runtime import Runtime
from tests.factories import create_household, create_user, post_household, user_with_token


async def test_a_user_creates_lists_reads_and_edits_own_households(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    created = await post_household(client, headers, name="Dacha", region="ru-spe")
    assert created["region"] == "RU-SPE"
    assert created["status"] == "active"
    assert created["agents"] == []

    listed = await client.get("/api/households", headers=headers)
    assert [h["id"] for h in listed.json()] == [created["id"]]
    read = await client.get(f"/api/households/{created['id']}", headers=headers)
    assert read.json()["name"] == "Dacha"

    patched = await client.patch(
        f"/api/households/{created['id']}",
        json={"address": "Nevsky 2", "region": "RU-NVS"},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["address"] == "Nevsky 2"
    assert patched.json()["region"] == "RU-NVS"
    assert patched.json()["name"] == "Dacha"


async def test_household_input_errors_have_reasons_and_create_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    unknown = await client.post(
        "/api/households", json={"name": "X", "address": "Y", "region": "RU-ZZZ"}, headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_region"
    malformed = await client.post(
        "/api/households", json={"name": "", "address": "Y", "region": "Moscow"}, headers=headers
    )
    assert malformed.status_code == 422
    assert "name" in malformed.json()["error"]["message"]
    assert "region" in malformed.json()["error"]["message"]
    assert await session.scalar(select(func.count()).select_from(Household)) == 0


async def test_another_users_household_is_a_404_on_every_route_and_stays_unchanged(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, owner_headers = await user_with_token(client, session)
    _, intruder_headers = await user_with_token(client, session)
    household = await post_household(client, owner_headers, name="Mine")
    agent = await client.post(f"/api/households/{household['id']}/agents", headers=owner_headers)
    agent_id = agent.json()["agent_id"]
    hid = household["id"]

    for method, path, body in [
        ("GET", f"/api/households/{hid}", None),
        ("PATCH", f"/api/households/{hid}", {"name": "Stolen"}),
        ("POST", f"/api/households/{hid}/agents", {"name": "rogue"}),
        ("DELETE", f"/api/households/{hid}/agents/{agent_id}", None),
        ("GET", f"/api/households/{uuid.uuid4()}", None),
    ]:
        response = await client.request(method, path, json=body, headers=intruder_headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "household_not_found"

    assert (await client.get("/api/households", headers=intruder_headers)).json() == []
    read = (await client.get(f"/api/households/{hid}", headers=owner_headers)).json()
    assert read["name"] == "Mine"
    assert [(a["id"], a["revoked_at"]) for a in read["agents"]] == [(agent_id, None)]


async def test_an_admin_reaches_any_household(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, owner_headers = await user_with_token(client, session)
    _, admin_headers = await user_with_token(client, session, admin=True)
    household = await post_household(client, owner_headers)
    read = await client.get(f"/api/households/{household['id']}", headers=admin_headers)
    assert read.status_code == 200
    assert read.json()["id"] == household["id"]


async def test_agent_registration_shows_the_secret_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    household = await post_household(client, headers)
    response = await client.post(
        f"/api/households/{household['id']}/agents", json={"name": "Kitchen Pi"}, headers=headers
    )
    assert response.status_code == 201
    body = response.json()
    secret = body["agent_secret"]
    assert len(secret) >= 40
    assert body["mqtt_topic"] == f"mornet/{household['id']}/telemetry"
    config = tomllib.loads(body["config_toml"])
    assert config == {
        "household_id": household["id"],
        "agent_id": body["agent_id"],
        "agent_secret": secret,
        "mqtt_url": body["mqtt_url"],
        "interval_s": 60,
        "buffer_path": "mornet-agent-buffer.db",
    }

    stored = await session.get(EdgeAgent, uuid.UUID(body["agent_id"]))
    assert stored is not None
    assert secret not in stored.public_key + stored.password_hash
    assert stored.public_key == service.agent_public_key(secret)
    assert stored.password_hash.startswith("$argon2id$")
    reread = await client.get(f"/api/households/{household['id']}", headers=headers)
    assert secret not in reread.text
    assert [a["name"] for a in reread.json()["agents"]] == ["Kitchen Pi"]

    agent_id = uuid.UUID(body["agent_id"])
    assert await service.authenticate_agent(session, agent_id=agent_id, secret=secret) is not None
    assert await service.authenticate_agent(session, agent_id=agent_id, secret=secret + "x") is None
    assert await service.authenticate_agent(session, agent_id=uuid.uuid4(), secret=secret) is None


async def test_a_revoked_agent_can_no_longer_authenticate(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, headers = await user_with_token(client, session)
    household = await post_household(client, headers)
    body = (await client.post(f"/api/households/{household['id']}/agents", headers=headers)).json()
    revoked = await client.delete(
        f"/api/households/{household['id']}/agents/{body['agent_id']}", headers=headers
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    session.expire_all()
    agent_id = uuid.UUID(body["agent_id"])
    assert (
        await service.authenticate_agent(session, agent_id=agent_id, secret=body["agent_secret"])
        is None
    )
    other = await post_household(client, headers, name="Other")
    wrong_household = await client.delete(
        f"/api/households/{other['id']}/agents/{body['agent_id']}", headers=headers
    )
    assert wrong_household.status_code == 404
    assert wrong_household.json()["error"]["code"] == "agent_not_found"


async def test_admin_household_list_shows_owner_status_and_active_agent_count(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner, owner_headers = await user_with_token(client, session)
    _, admin_headers = await user_with_token(client, session, admin=True)
    household = await post_household(client, owner_headers)
    await post_household(client, owner_headers, name="Empty")
    for _ in range(2):
        await client.post(f"/api/households/{household['id']}/agents", headers=owner_headers)
    revoked = (
        await client.post(f"/api/households/{household['id']}/agents", headers=owner_headers)
    ).json()
    await client.delete(
        f"/api/households/{household['id']}/agents/{revoked['agent_id']}", headers=owner_headers
    )

    response = await client.get("/api/admin/households", headers=admin_headers)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == 2
    rows = {row["name"]: row for row in page["items"]}
    assert rows["Home"]["owner_email"] == owner.email
    assert rows["Home"]["owner_id"] == str(owner.id)
    assert rows["Home"]["status"] == "active"
    assert rows["Home"]["agent_count"] == 2
    assert rows["Empty"]["agent_count"] == 0

    plain = await client.get("/api/admin/households", headers=owner_headers)
    assert plain.status_code == 403


async def test_a_new_agent_is_pointed_at_the_embedded_broker_port(
    runtime: Runtime, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    runtime.settings.mqtt_port = 2883  # `mornet up --mqtt-port 2883`
    _, headers = await user_with_token(client, session)
    household = await client.post(
        "/api/households", json={"name": "H", "address": "A", "region": "RU-MOW"}, headers=headers
    )
    agent = await client.post(f"/api/households/{household.json()['id']}/agents", headers=headers)
    assert agent.status_code == 201
    assert agent.json()["mqtt_url"] == "mqtt://127.0.0.1:2883"
    assert 'mqtt_url = "mqtt://127.0.0.1:2883"' in agent.json()["config_toml"]


async def test_a_database_dump_can_neither_sign_telemetry_nor_log_in_as_an_agent(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    """Everything the database holds about an agent, tried as its credentials."""
    from mornet.bus import InProcessBus
    from mornet.telemetry.consumers import Gateway
    from mornet.telemetry.models import DeadLetter
    from mornet.wire.telemetry import encode, sign, telemetry_topic
    from tests.telemetry.helpers import plug

    _, headers = await user_with_token(client, session)
    household = await post_household(client, headers)
    body = (await client.post(f"/api/households/{household['id']}/agents", headers=headers)).json()
    agent_id = uuid.UUID(body["agent_id"])
    row = await session.get(EdgeAgent, agent_id)
    assert row is not None
    dumped = [
        row.public_key,
        row.password_hash,
        hashlib.sha256(row.public_key.encode()).hexdigest(),
    ]
    for candidate in dumped:
        assert (
            await service.authenticate_agent(session, agent_id=agent_id, secret=candidate) is None
        )

    gateway = Gateway(runtime.sessions, InProcessBus())
    topic = telemetry_topic(household["id"])
    for candidate in dumped:
        # A key made from any stored value signs for nobody.
        forged_key = Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(candidate.encode()).digest()
        )
        forged = encode(sign({"agent_id": str(agent_id), "readings": [plug(1, 1.0)]}, forged_key))
        assert not await gateway.handle(topic, forged)
    reasons = (await session.scalars(select(DeadLetter.reason))).all()
    assert len(reasons) == len(dumped)
    assert all("signature does not match" in r for r in reasons)


async def test_the_admin_household_list_pages_without_gaps_or_overlaps(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner, _ = await user_with_token(client, session)
    _, admin_headers = await user_with_token(client, session, admin=True)
    for index in range(5):
        await create_household(session, owner=owner, name=f"House {index}")

    seen: list[str] = []
    for offset in (0, 2, 4):
        response = await client.get(
            "/api/admin/households", params={"offset": offset, "limit": 2}, headers=admin_headers
        )
        assert response.status_code == 200
        page = response.json()
        assert (page["total"], page["offset"], page["limit"]) == (5, offset, 2)
        seen += [row["name"] for row in page["items"]]
    assert sorted(seen) == [f"House {index}" for index in range(5)]
    assert len(seen) == 5

    too_big = await client.get(
        "/api/admin/households", params={"limit": 201}, headers=admin_headers
    )
    assert too_big.status_code == 422


async def test_a_household_is_read_through_the_actors_filter(session: AsyncSession) -> None:
    """The ownership rule is part of the query: another user's household is not found, an
    admin's query finds every household."""
    from mornet.households.service import HouseholdNotFound

    owner = await create_user(session)
    other = await create_user(session)
    admin = await create_user(session, admin=True)
    home = await create_household(session, owner=owner)

    assert (await service.get_household(session, actor=owner, household_id=home.id)).id == home.id
    assert (await service.get_household(session, actor=admin, household_id=home.id)).id == home.id
    with pytest.raises(HouseholdNotFound):
        await service.get_household(session, actor=other, household_id=home.id)

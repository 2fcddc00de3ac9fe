"""Agents provisioned before Ed25519 keep working after the migration, and the database no
longer holds anything that signs or logs in."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

import sqlalchemy as sa

from mornet.db import create_engine, create_sessionmaker, migrate
from mornet.households import service
from mornet.wire.telemetry import private_key, sign, signature_valid, verifier


async def test_existing_agents_migrate_to_public_keys_without_reprovisioning(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(migrate, url, "0003")
    secret = "an-agent-secret-from-before-the-upgrade-xyz"
    user_id, household_id, agent_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO users (id, email, password_hash, full_name, role, status, "
                "token_version, created_at) VALUES (:id, 'old@example.com', 'x', 'Old', 'user', "
                "'active', 0, '2026-01-01 00:00:00')"
            ),
            {"id": user_id.hex},
        )
        connection.execute(
            sa.text(
                "INSERT INTO households (id, owner_id, name, address, region_code, status, "
                "created_at) VALUES (:id, :owner, 'H', 'A', 'RU-MOW', 'active', "
                "'2026-01-01 00:00:00')"
            ),
            {"id": household_id.hex, "owner": user_id.hex},
        )
        connection.execute(
            sa.text(
                "INSERT INTO edge_agents (id, household_id, name, secret_hash, created_at) "
                "VALUES (:id, :household, 'old pi', :digest, '2026-01-01 00:00:00')"
            ),
            {
                "id": agent_id.hex,
                "household": household_id.hex,
                "digest": hashlib.sha256(secret.encode()).hexdigest(),
            },
        )
    engine.dispose()

    await asyncio.to_thread(migrate, url, "head")

    async_engine = create_engine(url)
    try:
        async with create_sessionmaker(async_engine)() as session:
            # The broker login with the old secret still works…
            assert await service.authenticate_agent(session, agent_id=agent_id, secret=secret)
            # …and so does the signature the upgraded agent makes from the same secret.
            gateway_view = await service.agent_for_gateway(session, agent_id)
            assert gateway_view is not None
            message = sign({"agent_id": str(agent_id), "readings": []}, private_key(secret))
            assert signature_valid(message, gateway_view.verifier)
            columns = {
                c["name"] for c in sa.inspect(sa.create_engine(url)).get_columns("edge_agents")
            }
            assert "secret_hash" not in columns
            row = (
                await session.execute(sa.text("SELECT public_key, password_hash FROM edge_agents"))
            ).one()
            assert verifier(row.public_key) is not None
            assert row.password_hash.startswith("$argon2id$")
            assert hashlib.sha256(secret.encode()).hexdigest() not in (
                row.public_key + row.password_hash
            )
    finally:
        await async_engine.dispose()

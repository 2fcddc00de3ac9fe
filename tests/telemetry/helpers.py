"""Building signed telemetry the way an agent does, and storing readings directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mornet.db import unit_of_work
from mornet.runtime import Runtime
from mornet.telemetry import service
from mornet.telemetry.schemas import NormalisedBatch, NormalisedReading, WireReading
from mornet.wire.telemetry import encode, private_key, sign, signed_payload, telemetry_topic

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


class FakeAgent:
    """The credentials and message format of a registered agent (the real agent's wire code)."""

    def __init__(self, household_id: str, agent_id: str, secret: str) -> None:
        self.household_id = household_id
        self.agent_id = agent_id
        self.secret = secret

    @property
    def topic(self) -> str:
        return telemetry_topic(self.household_id)

    def message(
        self,
        readings: list[dict[str, Any]],
        *,
        secret: str | None = None,
        canonical_layout: bool = True,
    ) -> bytes:
        """As agents send it: the canonical JSON with `sig` last; `canonical_layout=False`
        writes the same signed message in another layout (members in another order), as
        agents did before, which the gateway checks over the canonical JSON instead."""
        body = {"agent_id": self.agent_id, "readings": readings}
        key = private_key(secret or self.secret)
        if canonical_layout:
            return signed_payload(body, key)
        signed = sign(body, key)
        return encode({"sig": signed["sig"], **body})


def plug(
    seq: int, energy_wh: float, *, device: str = "plug-1", minutes: int | None = None, **extra: Any
) -> dict[str, Any]:
    ts = T0 + timedelta(minutes=seq if minutes is None else minutes)
    return {
        "device_id": device,
        "resource": "E",
        "ts": ts.isoformat(),
        "seq": seq,
        "power_w": 100.0,
        "energy_wh": energy_wh,
        "voltage_v": 230.1,
        "current_a": 0.43,
        **extra,
    }


async def provision(
    client: httpx.AsyncClient, headers: dict[str, str], region: str = "RU-MOW"
) -> FakeAgent:
    household = await client.post(
        "/api/households", json={"name": "Home", "address": "A", "region": region}, headers=headers
    )
    assert household.status_code == 201
    agent = await client.post(f"/api/households/{household.json()['id']}/agents", headers=headers)
    body = agent.json()
    return FakeAgent(body["household_id"], body["agent_id"], body["agent_secret"])


async def store_readings(
    runtime: Runtime, household_id: uuid.UUID | str, readings: list[dict[str, Any]]
) -> None:
    """Store wire readings for a household as the readings consumer does."""
    batch = NormalisedBatch(
        household_id=uuid.UUID(str(household_id)),
        agent_id=None,
        readings=[NormalisedReading.of(WireReading.model_validate(r)) for r in readings],
    )
    async with unit_of_work(runtime.sessions) as session:
        await service.store_batch(session, batch)

"""The gateway and the consumer in-process: what is accepted, what is dead-lettered, what is
stored, and how counters become hourly use."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bus import READINGS, InProcessBus
from mornet.households import service as households_service
from mornet.runtime import Runtime
from mornet.telemetry.consumers import Gateway, ReadingsConsumer
from mornet.telemetry.models import DeadLetter, HourlyConsumption, Reading
from mornet.wire.telemetry import private_key
from tests.factories import user_with_token
from tests.telemetry.helpers import T0, FakeAgent, plug, provision


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self.bus = InProcessBus()
        self.gateway = Gateway(runtime.sessions, self.bus)
        self.consumer = ReadingsConsumer(runtime.sessions)

    async def send(self, topic: str, payload: bytes) -> bool:
        accepted = await self.gateway.handle(topic, payload)
        await self.bus.idle()
        return accepted


@pytest.fixture
async def pipeline(runtime: Runtime) -> AsyncIterator[Pipeline]:
    pipe = Pipeline(runtime)
    await pipe.bus.consume(READINGS, "readings", pipe.consumer.handle)
    yield pipe
    await pipe.bus.close()


@pytest.fixture
async def agent(client: httpx.AsyncClient, session: AsyncSession) -> FakeAgent:
    _, headers = await user_with_token(client, session)
    return await provision(client, headers)


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _hours(session: AsyncSession) -> dict[int, Decimal]:
    rows = (await session.scalars(select(HourlyConsumption))).all()
    return {r.hour_start.hour: r.quantity for r in rows if r.quantity}


@pytest.mark.parametrize("canonical_layout", [True, False], ids=["as-agents-send", "reordered"])
async def test_a_signed_batch_is_stored_once_with_canonical_units(
    pipeline: Pipeline, agent: FakeAgent, session: AsyncSession, canonical_layout: bool
) -> None:
    readings = [
        plug(1, 1000.0),
        {
            "device_id": "plug-2",
            "resource": "E",
            "ts": T0.isoformat(),
            "seq": 7,
            "power_mw": 12345,
            "energy_kwh": 2.5,
            "voltage_mv": 229000,
            "current_ma": 54,
        },
    ]
    message = agent.message(readings, canonical_layout=canonical_layout)
    assert await pipeline.send(agent.topic, message)
    assert await pipeline.send(agent.topic, message)  # a QoS 1 redelivery
    assert await _count(session, Reading) == 2
    stored = await session.get(Reading, (uuid.UUID(agent.household_id), "plug-2", 7))
    assert stored is not None
    assert (stored.counter, stored.power_w, stored.voltage_v, stored.current_a) == (
        Decimal("2.5"),
        Decimal("12.345"),
        Decimal("229"),
        Decimal("0.054"),
    )
    assert pipeline.consumer.stored == 2
    assert pipeline.consumer.duplicates == 2


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda a, t, p: (t, b"not json at all"), "not JSON"),
        (lambda a, t, p: (t, b"[1, 2]"), "not a JSON object"),
        (lambda a, t, p: (t, b"x" * (256 * 1024 + 1)), "exceeds the limit"),
        (lambda a, t, p: ("mornet/telemetry", p), "is not mornet/<household_id>/telemetry"),
        (
            lambda a, t, p: (t, a.message([plug(1, 5.0)], secret="wrong-secret")),
            "Ed25519 signature",
        ),
        (
            lambda a, t, p: (t, json.dumps({**json.loads(p), "agent_id": "nope"}).encode()),
            "not a UUID",
        ),
        (
            lambda a, t, p: (
                t,
                json.dumps(
                    {**json.loads(p), "agent_id": "7d0c3a38-9f0e-4b43-8f43-0b3f8a8d1e11"}
                ).encode(),
            ),
            "unknown, revoked",
        ),
        (lambda a, t, p: (t, a.message([plug(1, -5.0)])), "greater than or equal to 0"),
        (lambda a, t, p: (t, a.message([{**plug(1, 5.0), "resource": "X"}])), "resource"),
        (
            lambda a, t, p: (
                t,
                a.message([{k: v for k, v in plug(1, 5.0).items() if k != "energy_wh"}]),
            ),
            "needs energy_wh",
        ),
        (
            lambda a, t, p: (t, a.message([{**plug(1, 5.0), "ts": "2999-01-01T00:00:00+00:00"}])),
            "from the future",
        ),
        (
            lambda a, t, p: (t, a.message([{**plug(1, 5.0), "ts": "2026-01-01T00:00:00"}])),
            "timezone",
        ),
        (lambda a, t, p: (t, a.message([])), "at least 1 item"),
    ],
)
async def test_bad_messages_become_dead_letters_with_reasons(
    pipeline: Pipeline, agent: FakeAgent, session: AsyncSession, mutate: Any, reason: str
) -> None:
    good = agent.message([plug(1, 5.0)])
    topic, payload = mutate(agent, agent.topic, good)
    assert not await pipeline.send(topic, payload)
    letters = (await session.scalars(select(DeadLetter))).all()
    assert len(letters) == 1
    assert reason in letters[0].reason
    assert letters[0].payload == payload[: 64 * 1024]
    assert letters[0].payload_size == len(payload)
    assert await _count(session, Reading) == 0
    # …and the pipeline keeps flowing.
    assert await pipeline.send(agent.topic, good)
    assert await _count(session, Reading) == 1


async def test_a_message_changed_after_signing_is_refused_in_either_layout(
    pipeline: Pipeline, agent: FakeAgent, session: AsyncSession
) -> None:
    for canonical_layout in (True, False):
        signed = agent.message([plug(1, 5000.0)], canonical_layout=canonical_layout)
        changed = signed.replace(b'"energy_wh":5000.0', b'"energy_wh":9000.0')
        assert changed != signed
        assert not await pipeline.send(agent.topic, changed)
    # Signed as sent, but a second agent_id after the signer's would be the one read.
    other = str(uuid.uuid4())
    body = json.dumps(
        {"agent_id": agent.agent_id, "readings": [plug(1, 5.0)]}, separators=(",", ":")
    )
    doubled = body.replace('","readings"', f'","agent_id":"{other}","readings"', 1).encode()
    signature = private_key(agent.secret).sign(doubled).hex().encode()
    assert not await pipeline.send(agent.topic, doubled[:-1] + b',"sig":"' + signature + b'"}')
    letters = (await session.scalars(select(DeadLetter).order_by(DeadLetter.received_at))).all()
    assert [letter.reason for letter in letters][:2] == [
        "the Ed25519 signature does not match the agent's public key"
    ] * 2
    assert "agent_id differs from the signer's" in letters[2].reason
    assert await _count(session, Reading) == 0


async def test_an_agent_cannot_publish_for_another_household(
    client: httpx.AsyncClient, session: AsyncSession, pipeline: Pipeline, agent: FakeAgent
) -> None:
    _, other_owner = await user_with_token(client, session)
    other = await provision(client, other_owner)
    # Signed correctly with its own secret, but sent to the other household's topic.
    assert not await pipeline.send(other.topic, agent.message([plug(1, 5.0)]))
    letter = (await session.scalars(select(DeadLetter))).one()
    assert "belongs to another household" in letter.reason
    assert await _count(session, Reading) == 0


async def test_a_revoked_agent_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, pipeline: Pipeline
) -> None:
    _, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    await client.delete(
        f"/api/households/{agent.household_id}/agents/{agent.agent_id}", headers=headers
    )
    assert not await pipeline.send(agent.topic, agent.message([plug(1, 5.0)]))
    assert "unknown, revoked" in (await session.scalars(select(DeadLetter))).one().reason


async def test_a_blocked_owners_agents_are_refused_by_gateway_and_broker(
    client: httpx.AsyncClient, session: AsyncSession, pipeline: Pipeline, runtime: Runtime
) -> None:
    owner, headers = await user_with_token(client, session)
    agent = await provision(client, headers)
    assert await pipeline.send(agent.topic, agent.message([plug(1, 5.0)]))
    _, admin = await user_with_token(client, session, admin=True)
    blocked = await client.post(f"/api/admin/users/{owner.id}/block", headers=admin)
    assert blocked.status_code == 200
    assert not await pipeline.send(agent.topic, agent.message([plug(2, 6.0)]))
    assert await _count(session, Reading) == 1
    reason = (await session.scalars(select(DeadLetter))).one().reason
    assert "owner is blocked" in reason
    async with runtime.sessions() as fresh:
        assert (
            await households_service.authenticate_agent(
                fresh, agent_id=uuid.UUID(agent.agent_id), secret=agent.secret
            )
            is None
        )


async def test_counter_deltas_become_hourly_use_with_resets_and_gaps(
    pipeline: Pipeline, agent: FakeAgent, session: AsyncSession
) -> None:
    readings = [
        plug(0, 1000.0, minutes=0),  # 10:00 baseline
        plug(1, 1200.0, minutes=30),  # 10:30 +0.2 kWh
        plug(2, 1500.0, minutes=59),  # 10:59 +0.3 kWh
        plug(3, 40.0, minutes=70),  # 11:10 reset: +0.040 kWh since the reboot
        plug(4, 140.0, minutes=80),  # 11:20 +0.1 kWh
        plug(5, 640.0, minutes=200),  # 13:20 after a gap: +0.5 kWh, not lost
    ]
    assert await pipeline.send(agent.topic, agent.message(readings))
    assert await _hours(session) == {10: Decimal("0.5"), 11: Decimal("0.14"), 13: Decimal("0.5")}


async def test_out_of_order_and_split_batches_give_the_same_use(
    pipeline: Pipeline, agent: FakeAgent, session: AsyncSession
) -> None:
    readings = [plug(i, 1000.0 + 100 * i) for i in range(6)]
    for batch in (
        [readings[4], readings[0]],
        [readings[2]],
        [readings[5], readings[1], readings[3]],
    ):
        assert await pipeline.send(agent.topic, agent.message(batch))
    assert await _hours(session) == {10: Decimal("0.5")}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(st.tuples(st.integers(0, 500), st.booleans()), min_size=2, max_size=12),
    order=st.randoms(use_true_random=False),
    chunk=st.integers(1, 4),
)
async def test_hourly_use_never_depends_on_delivery_order(
    pipeline: Pipeline,
    agent: FakeAgent,
    session: AsyncSession,
    steps: list[tuple[int, bool]],
    order: Any,
    chunk: int,
) -> None:
    device = f"prop-{uuid.uuid4().hex[:12]}"
    counter, readings, expected = 0, [], Decimal(0)
    for seq, (increment, reset) in enumerate(steps):
        if seq and reset and increment < counter:
            counter = increment  # the plug rebooted: its counter restarts below where it was
        else:
            counter += increment
        if seq:
            expected += Decimal(increment) / 1000
        readings.append(plug(seq, float(counter), device=device, minutes=seq))
    before = sum((await _hours(session)).values(), Decimal(0))
    shuffled = readings[:]
    order.shuffle(shuffled)
    for start in range(0, len(shuffled), chunk):
        await pipeline.send(agent.topic, agent.message(shuffled[start : start + chunk]))
    session.expire_all()
    total = await session.scalar(
        select(func.count()).select_from(Reading).where(Reading.device_id == device)
    )
    assert total == len(readings)
    after = sum((await _hours(session)).values(), Decimal(0))
    assert after - before == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {
            "agent_id": st.text(max_size=40),
            "readings": st.lists(json_values, max_size=3),
            "sig": st.text(max_size=140),
        }
    ).map(lambda v: json.dumps(v).encode()),
    signed_readings=st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "device_id",
                    "resource",
                    "ts",
                    "seq",
                    "power_w",
                    "energy_wh",
                    "value",
                    "voltage_mv",
                    "extra",
                ]
            ),
            json_values,
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    ),
)
async def test_fuzzed_payloads_are_dead_lettered_never_crash(
    pipeline: Pipeline,
    agent: FakeAgent,
    session: AsyncSession,
    raw: bytes,
    signed_readings: list[dict[str, Any]],
) -> None:
    for payload in (raw, agent.message(signed_readings)):
        before = await _count(session, DeadLetter)
        accepted = await pipeline.send(agent.topic, payload)  # never raises
        after = await _count(session, DeadLetter)
        assert accepted or after == before + 1
    # …and a good message still goes through afterwards.
    assert await pipeline.send(
        agent.topic, agent.message([plug(10**9, 1.0, device="fuzz-check", minutes=0)])
    )

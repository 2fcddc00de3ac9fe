"""The in-process bus (embedded mode) closes without cutting a handler off mid-transaction."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select, text

from mornet.bus import InProcessBus
from mornet.db import unit_of_work
from mornet.runtime import Runtime
from mornet.telemetry.models import DeadLetter

INSERT = text(
    "INSERT INTO telemetry_dead_letters (id, received_at, topic, reason, payload, payload_size)"
    " VALUES (:id, CURRENT_TIMESTAMP, 't', 'r', :payload, 1)"
)


async def test_closing_lets_the_batch_in_hand_commit_and_then_stops(runtime: Runtime) -> None:
    bus = InProcessBus()
    writing = asyncio.Event()
    handled: list[bytes] = []

    async def handler(bodies: list[bytes]) -> None:
        async with unit_of_work(runtime.sessions) as session:
            await session.execute(INSERT, {"id": uuid.uuid4().hex, "payload": bodies[0]})
            writing.set()
            await asyncio.sleep(0.3)  # still in its transaction when the bus closes
        handled.extend(bodies)

    await bus.consume("topic", "queue", handler)
    first = asyncio.create_task(bus.publish("topic", b"first"))
    await writing.wait()
    await bus.close()
    # The batch in hand was committed, not rolled back by a cancellation…
    assert handled == [b"first"]
    await first
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DeadLetter)) == 1
        # …and no transaction of the closed consumer is left holding the database.
        async with unit_of_work(runtime.sessions) as other:
            await other.execute(INSERT, {"id": uuid.uuid4().hex, "payload": b"after"})
        assert await session.scalar(select(func.count()).select_from(DeadLetter)) == 2

"""Retention: raw readings older than the kept history are deleted while their hourly use
stays, each device keeps its last reading before the horizon so a late reading still splits
its use exactly, and a reading older than the horizon is refused."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.bus import Unprocessable
from mornet.db import unit_of_work, utcnow
from mornet.resources import Resource
from mornet.runtime import Runtime
from mornet.telemetry import service
from mornet.telemetry.consumers import ReadingsConsumer
from mornet.telemetry.models import DeadLetter, HourlyConsumption, Reading
from mornet.telemetry.schemas import (
    NormalisedBatch,
    NormalisedReading,
    UnitBundle,
    encode_bundle,
)
from tests.factories import user_with_token
from tests.telemetry.helpers import provision

DEVICES = ("plug-a", "plug-b")
KEEP_DAYS = 30


def _reading(
    device: str, hour: int, start: datetime, *, seq: int | None = None
) -> NormalisedReading:
    """Hourly readings: seq twice the hour (odd seqs are free for late ones), 0.1 kWh an hour."""
    return NormalisedReading(
        device_id=device,
        resource=Resource.ELECTRICITY,
        ts=start + timedelta(hours=hour),
        seq=2 * hour if seq is None else seq,
        counter=Decimal(hour) / 10,
    )


async def _year_of_readings(runtime: Runtime, household_id: uuid.UUID) -> tuple[datetime, int]:
    """A year of hourly readings of two plugs, up to the current hour; (first hour, hours)."""
    last = utcnow().replace(minute=0, second=0, microsecond=0)
    hours = 365 * 24
    start = last - timedelta(hours=hours - 1)
    for first in range(0, hours, 2000):
        batches = [
            NormalisedBatch(
                household_id=household_id,
                agent_id=None,
                readings=[
                    _reading(device, hour, start) for hour in range(first, min(first + 2000, hours))
                ],
            )
            for device in DEVICES
        ]
        async with unit_of_work(runtime.sessions) as session:
            await service.store_batches(session, batches)
    return start, hours


async def _total_use(session: AsyncSession, household_id: uuid.UUID) -> Decimal:
    total = await session.scalar(
        select(func.sum(HourlyConsumption.quantity)).where(
            HourlyConsumption.household_id == household_id
        )
    )
    return Decimal(total or 0)


async def _hour_use(session: AsyncSession, household_id: uuid.UUID, hour: datetime) -> Decimal:
    rows = await session.scalars(
        select(HourlyConsumption).where(
            HourlyConsumption.household_id == household_id,
            HourlyConsumption.hour_start == hour,
        )
    )
    return sum((row.quantity for row in rows), Decimal(0))


async def _readings_before(
    session: AsyncSession, household_id: uuid.UUID, moment: datetime
) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(Reading.device_id, Reading.seq)
        .where(Reading.household_id == household_id, Reading.ts < moment)
        .order_by(Reading.device_id, Reading.seq)
    )
    return [(device, seq) for device, seq in rows.all()]


async def test_a_year_of_readings_is_pruned_to_the_kept_history_and_the_use_stays(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    _, headers = await user_with_token(client, session)
    household_id = uuid.UUID((await provision(client, headers)).household_id)
    start, hours = await _year_of_readings(runtime, household_id)
    use_before = await _total_use(session, household_id)
    # 0.1 kWh an hour between consecutive readings of each plug.
    assert use_before == Decimal(hours - 1) / 10 * len(DEVICES)

    # The horizon at half past an hour, whatever the time of day: a late reading then has
    # room between it and the next hourly reading (and is newer than the store's horizon).
    now = utcnow().replace(minute=30, second=0, microsecond=0) + timedelta(hours=1)
    async with unit_of_work(runtime.sessions) as work:
        deleted = await service.prune_readings(work, keep_days=KEEP_DAYS, now=now)
    horizon = now - timedelta(days=KEEP_DAYS)
    old_hours = sum(1 for h in range(hours) if start + timedelta(hours=h) < horizon)
    # Everything before the horizon went, but each device's last reading before it.
    assert deleted == (old_hours - 1) * len(DEVICES)
    fence_seq = 2 * (old_hours - 1)
    assert await _readings_before(session, household_id, horizon) == [
        (device, fence_seq) for device in DEVICES
    ]
    kept = await session.scalar(
        select(func.count()).select_from(Reading).where(Reading.household_id == household_id)
    )
    assert kept == (hours - old_hours + 1) * len(DEVICES)
    assert await _total_use(session, household_id) == use_before

    # Pruning again finds nothing more to delete.
    async with unit_of_work(runtime.sessions) as work:
        assert await service.prune_readings(work, keep_days=KEEP_DAYS, now=now) == 0

    # A late reading between the fence and the first kept reading, after the horizon: its
    # use splits against the fence, so the total stays and its hour gains its part.
    fence_hour = old_hours - 1
    first_kept = start + timedelta(hours=fence_hour + 1)
    late = NormalisedReading(
        device_id=DEVICES[0],
        resource=Resource.ELECTRICITY,
        ts=first_kept - timedelta(minutes=1),
        seq=2 * fence_hour + 1,
        counter=Decimal(fence_hour) / 10 + Decimal("0.04"),
    )
    assert late.ts >= horizon
    late_hour = first_kept - timedelta(hours=1)
    before_late = await _hour_use(session, household_id, late_hour)
    async with unit_of_work(runtime.sessions) as work:
        stored = await service.store_batches(
            work,
            [NormalisedBatch(household_id=household_id, agent_id=None, readings=[late])],
            keep_days=KEEP_DAYS,
        )
    assert stored.new == 1
    session.expire_all()
    assert await _total_use(session, household_id) == use_before
    assert await _hour_use(session, household_id, late_hour) == before_late + Decimal("0.04")


async def test_a_reading_older_than_the_kept_history_is_refused_and_kept_as_a_dead_letter(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    _, headers = await user_with_token(client, session)
    fresh_home = uuid.UUID((await provision(client, headers)).household_id)
    old_home = uuid.UUID((await provision(client, headers)).household_id)
    now = utcnow()
    fresh = NormalisedBatch(
        household_id=fresh_home,
        agent_id=None,
        readings=[_reading("plug-a", hour, now - timedelta(hours=3)) for hour in range(3)],
    )
    old = NormalisedBatch(
        household_id=old_home,
        agent_id=None,
        readings=[_reading("plug-a", 0, now - timedelta(days=KEEP_DAYS, hours=1))],
    )

    async with unit_of_work(runtime.sessions) as work:
        with pytest.raises(service.BeyondKeptHistory, match=f"older than the {KEEP_DAYS} days"):
            await service.store_batches(work, [old], keep_days=KEEP_DAYS)

    # In one bundle with another household's batch: that one is stored, the old one is kept
    # as a dead letter with the reason — neither is lost.
    consumer = ReadingsConsumer(runtime.sessions, keep_days=KEEP_DAYS)
    bundle = encode_bundle([fresh.in_units(), old.in_units()])
    await consumer.handle([bundle])
    stored = await session.scalars(select(Reading.household_id).distinct())
    assert set(stored.all()) == {fresh_home}
    letters = (await session.scalars(select(DeadLetter))).all()
    assert len(letters) == 1
    assert f"older than the {KEEP_DAYS} days of readings kept" in letters[0].reason
    kept = UnitBundle.model_validate_json(letters[0].payload).unit_batches()
    assert [batch.household_id for batch in kept] == [old_home]
    assert kept[0].readings == old.in_units().readings

    # Alone, the old batch is refused to the bus, which keeps it as a dead letter.
    with pytest.raises(Unprocessable):
        await consumer.handle([old.model_dump_json().encode()])

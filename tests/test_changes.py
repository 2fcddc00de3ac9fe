"""Change announcements reach the caches of every process sharing the database, and only
for committed transactions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.api import create_app
from mornet.changes import Changes, cached_read, topics_of
from mornet.config import Settings
from mornet.db import create_engine, create_sessionmaker, unit_of_work
from mornet.households import service as households
from mornet.identity import service as identity
from mornet.runtime import Runtime
from mornet.tariffs import service as tariffs_service
from mornet.tariffs.models import Region
from mornet.tariffs.schemas import TariffCreate
from tests.factories import CIPHER, PASSWORD, create_household, create_user, login
from tests.polling import eventually


async def test_a_topic_moves_here_and_in_another_process_only_when_the_change_commits(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    here, elsewhere = Changes(database_url), Changes(database_url)  # two processes' views
    sessions = create_sessionmaker(engine, here)
    await here.start()
    await elsewhere.start()
    try:
        await eventually(lambda: _listening(here, elsewhere), within=10)
        before_here, before_elsewhere = here.version("t.one"), elsewhere.version("t.one")
        assert before_here is not None
        assert before_elsewhere is not None

        async def announce_then_fail() -> None:
            async with unit_of_work(sessions) as session:
                here.announce(session, "t.one")
                await session.execute(text("SELECT 1"))
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await announce_then_fail()
        assert here.version("t.one") == before_here
        assert elsewhere.version("t.one") == before_elsewhere

        async with unit_of_work(sessions) as session:
            here.announce(session, "t.one")
            await session.execute(text("SELECT 1"))
            assert here.version("t.one") == before_here  # not before the commit
        assert here.version("t.one") == before_here + 1  # at once in the announcer

        async def seen_elsewhere() -> bool:
            return elsewhere.version("t.one") != before_elsewhere

        await eventually(seen_elsewhere, within=5)
        assert elsewhere.version("t.other") is not None
        with pytest.raises(ValueError, match="topic"):
            here.announce(session, "Bad Topic; DROP")
    finally:
        await here.close()
        await elsewhere.close()
        await engine.dispose()


async def _listening(*views: Changes) -> bool:
    return all(view.version("probe") is not None for view in views)


@asynccontextmanager
async def _two_api_processes(settings: Settings) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two runtimes on one database (as two API processes), each listening for the other's
    announcements."""
    first, second = Runtime.from_settings(settings), Runtime.from_settings(settings)
    try:
        assert first.changes is not None
        assert second.changes is not None
        await first.changes.start()
        await second.changes.start()
        await eventually(lambda: _listening(first.changes, second.changes), within=10)  # type: ignore[arg-type]
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_postgres_caches_nothing_until_its_listener_is_connected(
    backend: str, database_url: str
) -> None:
    changes = Changes(database_url)
    if backend == "postgresql":
        assert changes.version("any") is None  # nobody listens yet: no cache may be trusted
        await changes.start()
        await eventually(lambda: _listening(changes), within=10)
        await changes.close()
        assert changes.version("any") is None
    else:
        assert changes.version("any") == 0  # SQLite: the stamp file needs no listener


async def test_a_block_made_by_another_process_refuses_a_cached_token_at_once(
    database_url: str, tmp_path: Path
) -> None:
    """Two API processes on one database: the user's token is served from process B's
    access cache; an operator blocks the user through process A; B refuses the token as soon
    as the announcement reaches it, and the token of a password reset made by a third
    process (the CLI's `admin create`) stops working in B too."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    async with _two_api_processes(settings) as (first, second):
        async with unit_of_work(first.sessions) as session:
            session.info[CIPHER] = first.cipher
            admin = await create_user(session, admin=True)
            member = await create_user(session)
        a = httpx.AsyncClient(transport=httpx.ASGITransport(create_app(first)), base_url="http://a")
        b = httpx.AsyncClient(
            transport=httpx.ASGITransport(create_app(second)), base_url="http://b"
        )
        async with a, b:
            admin_headers = await login(a, admin.email)
            member_headers = await login(b, member.email)
            for _ in range(3):  # the first read fills B's cache, the next ones come from it
                assert (await b.get("/api/me", headers=member_headers)).status_code == 200
            blocked = await a.post(f"/api/admin/users/{member.id}/block", headers=admin_headers)
            assert blocked.status_code == 200

            async def refused() -> bool:
                answer = await b.get("/api/me", headers=member_headers)
                return answer.status_code == 403 and answer.json()["error"]["code"] == (
                    "user_blocked"
                )

            await eventually(refused, within=2)

            old_admin_token = await login(b, admin.email)
            assert (await b.get("/api/me", headers=old_admin_token)).status_code == 200
            third = Runtime.from_settings(settings)  # the CLI: another process, no listener
            try:
                async with unit_of_work(third.sessions) as session:
                    await identity.ensure_admin(
                        session, email=admin.email, password=PASSWORD, full_name="Reset"
                    )
            finally:
                await third.close()

            async def revoked() -> bool:
                return (await b.get("/api/me", headers=old_admin_token)).status_code == 401

            await eventually(revoked, within=2)


async def test_every_write_announces_its_table_at_commit_whatever_path_it_takes(
    database_url: str,
) -> None:
    """Flushed objects, DML statements and a commit's own final flush all move the table's
    topic, here and in another process; a rolled-back write and a read move nothing."""
    engine = create_engine(database_url)
    here, elsewhere = Changes(database_url), Changes(database_url)
    sessions = create_sessionmaker(engine, here)
    (regions,) = topics_of(Region)
    assert regions == "table.regions"
    await here.start()
    await elsewhere.start()
    try:
        await eventually(lambda: _listening(here, elsewhere), within=10)

        async def moves(write: object, *, commits: bool = True) -> tuple[bool, bool]:
            before = (here.version(regions), elsewhere.version(regions))
            try:
                async with unit_of_work(sessions) as session:
                    await write(session)  # type: ignore[operator]
                    if not commits:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                pass

            async def seen() -> bool:
                return elsewhere.version(regions) != before[1]

            if commits:
                await eventually(seen, within=5)
            return here.version(regions) != before[0], elsewhere.version(regions) != before[1]

        async def add(session: AsyncSession) -> None:  # flushed only by the commit
            session.add(Region(code="XX-ONE", name="One", timezone="UTC"))

        async def edit(session: AsyncSession) -> None:
            await session.execute(update(Region).where(Region.code == "XX-ONE").values(name="1"))

        async def change_loaded(session: AsyncSession) -> None:
            region = await session.get(Region, "XX-ONE")
            assert region is not None
            region.name = "Uno"

        async def read(session: AsyncSession) -> None:
            await session.scalars(select(Region))

        assert await moves(add) == (True, True)
        assert await moves(edit) == (True, True)
        assert await moves(change_loaded) == (True, True)
        assert await moves(add, commits=False) == (False, False)
        before = here.version(regions)
        await moves(read, commits=False)
        async with unit_of_work(sessions) as session:
            await read(session)
        assert here.version(regions) == before
    finally:
        await here.close()
        await elsewhere.close()
        await engine.dispose()


async def test_a_cached_read_is_served_until_a_table_it_read_is_written(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    changes = Changes(database_url)
    sessions = create_sessionmaker(engine, changes)
    await changes.start()
    reads = 0

    async def names(session: AsyncSession) -> list[str]:
        async def read() -> list[str]:
            nonlocal reads
            reads += 1
            return list(await session.scalars(select(Region.name).order_by(Region.code)))

        return await cached_read(session, "test.names", topics_of(Region), "all", read)

    try:
        await eventually(lambda: _listening(changes), within=10)
        async with unit_of_work(sessions) as session:
            first = await names(session)
        async with unit_of_work(sessions) as session:
            assert await names(session) == first
        assert reads == 1  # the second came from the cache

        async with unit_of_work(sessions) as session:  # a writer reads its own uncommitted row
            session.add(Region(code="XX-NEW", name="New", timezone="UTC"))
            await session.flush()
            assert "New" in await names(session)
        async with unit_of_work(sessions) as session:
            assert "New" in await names(session)  # the commit moved the topic: read again
        assert reads == 3

        async def rename_then_fail() -> None:
            async with unit_of_work(sessions) as session:
                await session.execute(
                    update(Region).where(Region.code == "XX-NEW").values(name="Gone")
                )
                assert "Gone" in await names(session)
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):  # a write that rolls back does not fill the cache
            await rename_then_fail()
        async with unit_of_work(sessions) as session:
            shown = await names(session)
        assert "Gone" not in shown
        assert "New" in shown
    finally:
        await changes.close()
        await engine.dispose()


async def test_reads_cached_by_one_api_process_change_when_another_process_writes(
    database_url: str, tmp_path: Path
) -> None:
    """Process B serves a household, the household list and the tariffs from its caches; a
    CLI process (no listener) renames the household and publishes a price: B shows each
    change as soon as the announcement reaches it."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    async with _two_api_processes(settings) as (first, second):
        async with unit_of_work(first.sessions) as session:
            session.info[CIPHER] = first.cipher
            admin = await create_user(session, admin=True)
            owner = await create_user(session)
            household = await create_household(session, owner=owner)
        b = httpx.AsyncClient(
            transport=httpx.ASGITransport(create_app(second)), base_url="http://b"
        )
        async with b:
            headers = await login(b, owner.email)
            path = f"/api/households/{household.id}"
            for _ in range(3):  # filled once, then served from B's cache
                assert (await b.get(path, headers=headers)).json()["name"] == "Home"
                assert (await b.get("/api/households", headers=headers)).status_code == 200
                tariffs = (await b.get("/api/tariffs/RU-MOW")).json()["tariffs"]
            electricity = next(t for t in tariffs if t["resource"] == "E")

            cli = Runtime.from_settings(settings)  # another process: announces, listens not
            try:
                async with unit_of_work(cli.sessions) as session:
                    await households.update_household(
                        session, actor=owner, household_id=household.id, name="Renamed"
                    )
                    await tariffs_service.add_tariff(
                        session,
                        TariffCreate(region="RU-MOW", resource="E", price=Decimal("99.5")),
                        actor_id=admin.id,
                    )
            finally:
                await cli.close()

            async def renamed() -> bool:
                one = (await b.get(path, headers=headers)).json()["name"]
                listed = (await b.get("/api/households", headers=headers)).json()
                return one == "Renamed" and listed[0]["name"] == "Renamed"

            async def repriced() -> bool:
                shown = (await b.get("/api/tariffs/RU-MOW")).json()["tariffs"]
                return next(t for t in shown if t["resource"] == "E")["price"] == "99.5000"

            await eventually(renamed, within=2)
            await eventually(repriced, within=2)
            assert electricity["price"] != "99.5000"


async def test_callers_that_miss_together_read_once_and_share_the_value(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    changes = Changes(database_url)
    sessions = create_sessionmaker(engine, changes)
    await changes.start()
    reads = 0
    release = asyncio.Event()

    async def slow_read() -> str:
        nonlocal reads
        reads += 1
        await release.wait()
        return "value"

    async def caller() -> str:
        async with unit_of_work(sessions) as session:
            return await cached_read(session, "test.shared", ("t.shared",), "k", slow_read)

    try:
        await eventually(lambda: _listening(changes), within=10)
        callers = [asyncio.create_task(caller()) for _ in range(10)]
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.gather(*callers) == ["value"] * 10
        assert reads == 1
    finally:
        await changes.close()
        await engine.dispose()

"""Change announcements reach the caches of every process sharing the database, and only
for committed transactions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from mornet.api import create_app
from mornet.changes import Changes
from mornet.config import Settings
from mornet.db import create_engine, create_sessionmaker, unit_of_work
from mornet.identity import service as identity
from mornet.runtime import Runtime
from tests.factories import CIPHER, PASSWORD, create_user, login
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
    first, second = Runtime.from_settings(settings), Runtime.from_settings(settings)
    assert first.changes is not None
    assert second.changes is not None
    await first.changes.start()
    await second.changes.start()
    try:
        await eventually(lambda: _listening(first.changes, second.changes), within=10)  # type: ignore[arg-type]
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
    finally:
        await first.close()
        await second.close()

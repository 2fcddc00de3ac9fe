"""Change announcements across the processes that share one database, for caches.

A process may keep what it read (who a user is, a wallet's balances) only while nothing has
changed it. A transaction that changes such a thing *announces* a topic; once it commits,
every process sharing the database sees the topic's version move:

- in the announcing process at once (after commit, before the caller goes on);
- on PostgreSQL, in the others by `NOTIFY`, which the server delivers at commit (a few
  milliseconds later) to each process's listening connection;
- on SQLite, whose other processes are CLI commands on the same file, by a stamp file next to
  the database that the announcer rewrites after commit and readers `stat` (microseconds).

A cache reads `version(topic)` *before* it reads the database, stores what it read under that
version, and trusts an entry only while the version is the same. `version` is None while the
cross-process feed cannot be trusted (PostgreSQL's listener is not connected yet, or was lost):
then nothing may be cached and every read goes to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = structlog.get_logger(__name__)

CHANGES = "mornet.changes"
"""The key under which a session's `info` holds the process's `Changes`."""

_CHANNEL = "mornet_changes"
_PENDING = "mornet.changes.pending"
_TOPIC = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")


class Changes:
    """The process's view of announced changes, per topic."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._backend = url.get_backend_name()
        self._versions: dict[str, int] = {}
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        self._stamp_dir: Path | None = None
        if self._backend == "sqlite" and url.database and url.database != ":memory:":
            self._stamp_dir = Path(f"{url.database}-changes")
        self._dsn = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if self._backend == "postgresql"
            else None
        )
        self._origin = uuid.uuid4().hex
        self._listener: Any = None
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    # reading

    def version(self, topic: str) -> int | None:
        """The topic's version in this process; None when a cache must not be trusted."""
        if self._dsn is not None and not self._listening:
            return None
        if self._stamp_dir is not None:
            self._look_at_stamp(topic)
        return self._versions.get(topic, 0)

    def _stamp_signature(self, topic: str) -> tuple[int, int, int] | None:
        """The stamp file as it is now (a rewrite gives it a new inode); None if absent."""
        assert self._stamp_dir is not None
        try:
            found = os.stat(self._stamp_dir / topic)
        except FileNotFoundError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _look_at_stamp(self, topic: str) -> None:
        signature = self._stamp_signature(topic)
        if topic not in self._stamps:
            self._stamps[topic] = signature
        elif self._stamps[topic] != signature:
            self._stamps[topic] = signature
            self._bump(topic)

    def _bump(self, topic: str) -> None:
        self._versions[topic] = self._versions.get(topic, 0) + 1

    # announcing

    def announce(self, session: AsyncSession, topic: str) -> None:
        """Make `topic` move everywhere once `session`'s transaction commits (not if it rolls
        back). On PostgreSQL the NOTIFY is sent inside the transaction, so the server delivers
        it exactly when the change becomes visible."""
        if not _TOPIC.match(topic):
            raise ValueError(f"not a topic name: {topic!r}")
        sync_session = session.sync_session
        if not event.contains(sync_session, "after_commit", self._after_commit):
            # Kept for the session's life (removing a listener while SQLAlchemy runs the
            # session's listeners breaks their dispatch); with nothing pending they do nothing.
            event.listen(sync_session, "before_commit", self._before_commit)
            event.listen(sync_session, "after_commit", self._after_commit)
            event.listen(sync_session, "after_rollback", self._forget)
        sync_session.info.setdefault(_PENDING, set()).add(topic)

    def _before_commit(self, session: Session) -> None:
        if self._backend == "postgresql":
            for topic in sorted(session.info.get(_PENDING, ())):
                session.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": _CHANNEL, "payload": f"{topic} {self._origin}"},
                )

    def _after_commit(self, session: Session) -> None:
        for topic in session.info.pop(_PENDING, set()):
            self._bump(topic)
            if self._stamp_dir is not None:
                self._write_stamp(topic)

    def _forget(self, session: Session) -> None:
        session.info.pop(_PENDING, None)

    def _write_stamp(self, topic: str) -> None:
        assert self._stamp_dir is not None
        try:
            self._stamp_dir.mkdir(mode=0o700, exist_ok=True)
            fresh = self._stamp_dir / f".{topic}.{os.getpid()}"
            fresh.write_bytes(os.urandom(8))
            os.replace(fresh, self._stamp_dir / topic)  # a new inode: readers see a change
            # This process's own stamp is not news to it (it moved the version already).
            self._stamps[topic] = self._stamp_signature(topic)
        except OSError as error:  # other processes fall back to their own TTL
            log.warning("changes.stamp_failed", topic=topic, error=str(error))

    # PostgreSQL's listener

    async def start(self) -> None:
        """Listen for other processes' announcements (PostgreSQL; nothing to do on SQLite)."""
        if self._dsn is not None and self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="changes-listener")

    async def _listen_forever(self) -> None:
        while True:
            lost = asyncio.Event()
            try:
                self._listener = await asyncpg.connect(self._dsn)
                self._listener.add_termination_listener(lambda _, lost=lost: lost.set())
                await self._listener.add_listener(_CHANNEL, self._notified)
                # Whatever changed while nobody listened is unknown: every topic moves.
                for topic in list(self._versions):
                    self._bump(topic)
                self._listening = True
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: cache nothing, retry
                log.warning("changes.listener_unavailable", error=str(error))
            finally:
                self._listening = False
            await asyncio.sleep(1)

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, origin = payload.partition(" ")
        if origin != self._origin:  # this process moved its own version at commit already
            self._bump(topic)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        self._listening = False


def announce(session: AsyncSession, topic: str) -> None:
    """Announce `topic` through the session's process-wide `Changes`, if it has one (a
    session without one belongs to a process that caches nothing)."""
    changes: Changes | None = session.info.get(CHANGES)
    if changes is not None:
        changes.announce(session, topic)

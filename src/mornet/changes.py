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

Every write announces itself: a session of `create_sessionmaker(engine, changes)` announces
`table.<name>` for each table its transaction inserts into, updates or deletes from (flushed
objects and DML statements alike; textual SQL is not parsed, so writes go through the ORM or
Core constructs), so a cache of a read names the tables it read (`topics_of`) and no write
path can forget to invalidate it. `cached_read` is that cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import Table, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

log = structlog.get_logger(__name__)

CHANGES = "mornet.changes"
"""The key under which a session's `info` holds the process's `Changes`."""

_CHANNEL = "mornet_changes"
_PENDING = "mornet.changes.pending"
_TOPIC = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")
_PAYLOAD_LIMIT = 7000  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more

V = TypeVar("V")
MISS = object()
"""What `ReadCache.get` returns for a value it does not hold (None may be a value)."""


def topics_of(*tables: Any) -> tuple[str, ...]:
    """The topics announced by writes to these tables (mapped classes or `Table`s)."""
    return tuple(
        f"table.{(t if isinstance(t, Table) else inspect(t).local_table).name}" for t in tables
    )


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
        self._caches: dict[str, ReadCache] = {}
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

    def session_class(self) -> type[Session]:
        """A `Session` class whose sessions announce every table they write, at commit."""
        announcing: type[Session] = type("AnnouncingSession", (Session,), {})
        event.listen(announcing, "after_flush", self._flushed)
        event.listen(announcing, "do_orm_execute", self._executed)
        event.listen(announcing, "before_commit", self._before_commit)
        event.listen(announcing, "after_commit", self._after_commit)
        return announcing

    def announce(self, session: AsyncSession, topic: str) -> None:
        """Make `topic` move everywhere once `session`'s transaction commits (not if it rolls
        back). On PostgreSQL the NOTIFY is sent inside the transaction, so the server delivers
        it exactly when the change becomes visible."""
        if not _TOPIC.match(topic):
            raise ValueError(f"not a topic name: {topic!r}")
        sync_session = session.sync_session
        if not event.contains(type(sync_session), "after_commit", self._after_commit) and (
            not event.contains(sync_session, "after_commit", self._after_commit)
        ):
            # A session made elsewhere: listen on it for its life (removing a listener while
            # SQLAlchemy runs the session's listeners breaks their dispatch).
            event.listen(sync_session, "before_commit", self._before_commit)
            event.listen(sync_session, "after_commit", self._after_commit)
        _pend(sync_session, topic)

    def _flushed(self, session: Session, _: UOWTransaction) -> None:
        # Still the pre-flush state here: what the flush inserted, updated and deleted.
        for instance in itertools.chain(session.new, session.dirty, session.deleted):
            for table in inspect(instance).mapper.tables:
                _pend(session, f"table.{table.name}")

    def _executed(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            table = getattr(state.statement, "table", None)
            name = getattr(table, "name", None)
            _pend(state.session, f"table.{name}" if name else "table.unknown")

    def _before_commit(self, session: Session) -> None:
        # The commit flushes after this hook: flush now, so what it writes is announced too.
        session.flush()
        pending = session.info.get(_PENDING)
        if pending and self._backend == "postgresql":
            for payload in _payloads(self._origin, sorted(pending)):
                session.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": _CHANNEL, "payload": payload},
                )

    def _after_commit(self, session: Session) -> None:
        # Announced topics are kept through a rollback (moving a version needlessly is
        # harmless; a rolled-back savepoint must not drop what its transaction still commits).
        for topic in session.info.pop(_PENDING, set()):
            self._bump(topic)
            if self._stamp_dir is not None:
                self._write_stamp(topic)

    def cache(self, name: str) -> ReadCache:
        """The process's cache called `name` (made on first use)."""
        found = self._caches.get(name)
        if found is None:
            found = self._caches[name] = ReadCache(self)
        return found

    def _write_stamp(self, topic: str) -> None:
        assert self._stamp_dir is not None
        try:
            self._stamp_dir.mkdir(mode=0o700, exist_ok=True)
            fresh = self._stamp_dir / f".{topic}.{os.getpid()}"
            fresh.write_bytes(os.urandom(8))
            os.replace(fresh, self._stamp_dir / topic)  # a new inode: readers see a change
            # This process's own stamp is not news to it (it moved the version already).
            self._stamps[topic] = self._stamp_signature(topic)
        except OSError as error:  # other processes miss this change: say so
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
        origin, *topics = payload.split(" ")
        if origin != self._origin:  # this process moved its own version at commit already
            for topic in topics:
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


def _pend(session: Session, topic: str) -> None:
    session.info.setdefault(_PENDING, set()).add(topic)


def _payloads(origin: str, topics: list[str]) -> list[str]:
    """`origin topic topic …` notifications, each under PostgreSQL's payload limit."""
    payloads: list[str] = []
    current = origin
    for topic in topics:
        if len(current) + len(topic) + 1 > _PAYLOAD_LIMIT:
            payloads.append(current)
            current = origin
        current += " " + topic
    return [*payloads, current]


class ReadCache:
    """Values read from the database, each trusted while the versions of the topics it was
    read under are unchanged (and, with `max_age`, for at most that many seconds)."""

    MAX_ENTRIES = 50_000

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self._entries: dict[Hashable, tuple[tuple[Hashable, ...], float, Any]] = {}
        self.reading: dict[tuple[Hashable, tuple[Hashable, ...]], asyncio.Future[Any]] = {}
        """Reads under way, per key and signature: callers that miss together read once."""

    def signature(
        self, topics: tuple[str, ...], extra: Hashable = None
    ) -> tuple[Hashable, ...] | None:
        """The versions of `topics` now (and `extra`); None if nothing may be cached."""
        versions: list[Hashable] = []
        for topic in topics:
            version = self._changes.version(topic)
            if version is None:
                return None
            versions.append(version)
        versions.append(extra)
        return tuple(versions)

    def get(self, key: Hashable, signature: tuple[Hashable, ...]) -> Any:
        """The value kept under `key` for `signature`, or `MISS`."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != signature or entry[1] < time.monotonic():
            return MISS
        return entry[2]

    def put(
        self, key: Hashable, signature: tuple[Hashable, ...], value: Any, max_age: float | None
    ) -> None:
        expires = time.monotonic() + max_age if max_age is not None else float("inf")
        self._entries[key] = (signature, expires, value)
        while len(self._entries) > self.MAX_ENTRIES:  # the oldest entries go first
            del self._entries[next(iter(self._entries))]


async def cached_read(
    session: AsyncSession,
    name: str,
    topics: tuple[str, ...],
    key: Hashable,
    read: Callable[[], Awaitable[V]],
    *,
    max_age: float | None = None,
    extra: Hashable = None,
) -> V:
    """`read()`'s value, kept in the process's cache `name` under `key` while none of the
    `topics` moves (and `extra`, a version the caller keeps, stays equal). The value is shared
    by every later caller: it must not be changed. A session that has written anything reads
    past the cache: it sees its own writes, and what it read may never commit."""
    changes: Changes | None = session.info.get(CHANGES)
    if changes is None or has_written(session.sync_session):
        return await read()  # a writer reads its own writes, and keeps nothing it read
    cache = changes.cache(name)
    signature = cache.signature(topics, extra)  # before the read: a change after it shows
    if signature is None:
        return await read()
    hit = cache.get(key, signature)
    if hit is not MISS:
        return hit  # type: ignore[no-any-return]
    under_way = cache.reading.get((key, signature))
    if under_way is not None:  # another caller is reading the same: share its value
        with contextlib.suppress(Exception):
            return await asyncio.shield(under_way)
        return await read()  # its read failed (or was cancelled): read for this caller
    reading: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    cache.reading[(key, signature)] = reading
    try:
        value = await read()
    except BaseException as error:
        reading.set_exception(error if isinstance(error, Exception) else RuntimeError("cancelled"))
        reading.exception()  # retrieved: nobody waiting is not an error
        raise
    finally:
        cache.reading.pop((key, signature), None)
    reading.set_result(value)
    if not has_written(session.sync_session):  # the read's autoflush may have written
        cache.put(key, signature, value, max_age)
    return value


def has_written(session: Session) -> bool:
    """Whether the session holds writes (made or pending) or announcements not committed."""
    return bool(session.info.get(_PENDING) or session.new or session.dirty or session.deleted)

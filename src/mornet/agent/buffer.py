"""The agent's store-and-forward buffer: SQLite on the Pi's disk.

A reading is written here before anything is sent, with a per-device sequence number that
keeps rising across restarts, and deleted only after the broker acknowledged the message
that carried it. Bounded by count and age; what a bound drops is logged, never silent.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Buffer:
    def __init__(self, path: Path, *, max_readings: int, max_age_s: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS readings (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                created_at REAL NOT NULL,
                body TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS sequences (
                device_id TEXT PRIMARY KEY,
                last_seq INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS device_state (
                device_id TEXT PRIMARY KEY,
                state TEXT NOT NULL
            );
            """
        )
        self.max_readings = max_readings
        self.max_age_s = max_age_s
        self.dropped = 0

    def add(self, device_id: str, reading: dict[str, Any]) -> int:
        """Store a reading with the device's next sequence number; returns it."""
        with self._transaction():
            row = self.db.execute(
                "SELECT last_seq FROM sequences WHERE device_id = ?", (device_id,)
            ).fetchone()
            seq = (row[0] + 1) if row else 0
            self.db.execute(
                "INSERT INTO sequences(device_id, last_seq) VALUES (?, ?) "
                "ON CONFLICT(device_id) DO UPDATE SET last_seq = excluded.last_seq",
                (device_id, seq),
            )
            body = {**reading, "device_id": device_id, "seq": seq}
            self.db.execute(
                "INSERT INTO readings(created_at, body) VALUES (?, ?)",
                (time.time(), json.dumps(body)),
            )
        return seq

    def oldest(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.execute(
            "SELECT id, body FROM readings ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [(row_id, json.loads(body)) for row_id, body in rows]

    def delete(self, ids: list[int]) -> None:
        if ids:
            with self._transaction():
                self.db.executemany("DELETE FROM readings WHERE id = ?", [(i,) for i in ids])

    def pending(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def enforce_bounds(self) -> int:
        """Drop what is too old or too much, oldest first; returns how many were dropped."""
        dropped = 0
        with self._transaction():
            cursor = self.db.execute(
                "DELETE FROM readings WHERE created_at < ?", (time.time() - self.max_age_s,)
            )
            dropped += cursor.rowcount
            excess = self.pending() - self.max_readings
            if excess > 0:
                cursor = self.db.execute(
                    "DELETE FROM readings WHERE id IN "
                    "(SELECT id FROM readings ORDER BY id LIMIT ?)",
                    (excess,),
                )
                dropped += cursor.rowcount
        if dropped:
            self.dropped += dropped
            log.error(
                "agent.buffer_dropped_readings",
                dropped=dropped,
                max_readings=self.max_readings,
                max_age_s=self.max_age_s,
                hint="the broker was unreachable for longer than the buffer holds",
            )
        return dropped

    def load_state(self, device_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT state FROM device_state WHERE device_id = ?", (device_id,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def save_state(self, device_id: str, state: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO device_state(device_id, state) VALUES (?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET state = excluded.state",
            (device_id, json.dumps(state)),
        )

    def close(self) -> None:
        self.db.close()

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> Buffer._Tx:
        return Buffer._Tx(self.db)

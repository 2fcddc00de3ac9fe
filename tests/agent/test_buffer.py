"""The agent's buffer: sequence numbers that survive restarts, and bounds that say what
they drop."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mornet.agent.buffer import Buffer


def test_sequence_numbers_keep_rising_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    first = Buffer(path, max_readings=100, max_age_s=3600)
    assert [first.add("plug", {"v": i}) for i in range(3)] == [0, 1, 2]
    assert first.add("other", {}) == 0
    first.delete([row_id for row_id, _ in first.oldest(10)])
    first.close()
    again = Buffer(path, max_readings=100, max_age_s=3600)
    assert again.add("plug", {"v": 3}) == 3
    assert again.oldest(10)[0][1] == {"v": 3, "device_id": "plug", "seq": 3}


def test_readings_leave_only_when_deleted_oldest_first(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", max_readings=100, max_age_s=3600)
    for i in range(5):
        buffer.add("plug", {"v": i})
    batch = buffer.oldest(2)
    assert [body["seq"] for _, body in batch] == [0, 1]
    assert buffer.pending() == 5
    buffer.delete([row_id for row_id, _ in batch])
    assert [body["seq"] for _, body in buffer.oldest(10)] == [2, 3, 4]


def test_the_bound_drops_the_oldest_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = Buffer(tmp_path / "b.db", max_readings=3, max_age_s=3600)
    for i in range(5):
        buffer.add("plug", {"v": i})
    with caplog.at_level(logging.ERROR):
        assert buffer.enforce_bounds() == 2
    assert [body["seq"] for _, body in buffer.oldest(10)] == [2, 3, 4]
    assert buffer.dropped == 2


def test_the_age_bound(tmp_path: Path) -> None:
    buffer = Buffer(tmp_path / "b.db", max_readings=100, max_age_s=0)
    buffer.add("plug", {"v": 1})
    assert buffer.enforce_bounds() == 1
    assert buffer.pending() == 0

"""The agent fits a Raspberry Pi: under 64 MB resident with 10 devices, measured on a real
`mornet agent run` process publishing to a real broker."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.brokers import Mosquitto

LIMIT_MB = 64


def test_agent_with_ten_devices_stays_under_64_mb(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    devices = ",\n".join(f'{{id = "plug-{i}", kind = "simulated", seed = {i}}}' for i in range(10))
    config = tmp_path / "agent.toml"
    config.write_text(
        f'household_id = "{uuid.uuid4()}"\nagent_id = "{uuid.uuid4()}"\n'
        f'agent_secret = "0123456789abcdef0123456789abcdef"\nmqtt_url = "{broker.url}"\n'
        f'interval_s = 0.2\nbuffer_path = "{tmp_path / "buffer.db"}"\ndevices = [\n{devices}\n]\n'
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "mornet", "agent", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        peak_kb = 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            assert agent.poll() is None, agent.stderr.read().decode() if agent.stderr else ""
            for line in Path(f"/proc/{agent.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
            time.sleep(0.5)
    finally:
        agent.terminate()
        agent.wait(10)
        broker.stop()
    assert 10_000 < peak_kb < LIMIT_MB * 1024, f"peak RSS {peak_kb / 1024:.1f} MB"
    import sqlite3

    with sqlite3.connect(tmp_path / "buffer.db") as db:
        readings = db.execute("SELECT sum(last_seq + 1) FROM sequences").fetchone()[0]
    assert readings >= 100  # it was really reading ten devices all along

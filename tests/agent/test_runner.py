"""The agent's loop when its broker cannot be reached: it keeps every reading and says why."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from structlog.testing import capture_logs

from mornet.agent.config import AgentConfig
from mornet.agent.runner import Agent
from tests.brokers import free_port


async def test_an_unreachable_broker_is_logged_at_once_then_periodically(tmp_path: Path) -> None:
    config = AgentConfig(
        household_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        agent_secret="s" * 32,
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",  # nothing listens there
        interval_s=0.2,
        buffer_path=tmp_path / "buffer.db",
        devices=[{"id": "plug-1", "kind": "simulated"}],
    )
    agent = Agent(config)
    agent.UNREACHABLE_GRACE_S = 0.1
    agent.UNREACHABLE_LOG_EVERY_S = 0.5
    stop = asyncio.Event()
    with capture_logs() as logs:
        running = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(1.4)
        stop.set()
        await asyncio.wait_for(running, 10)
    warnings = [e for e in logs if e["event"] == "agent.broker_unreachable"]
    assert 2 <= len(warnings) <= 4
    assert all(w["broker"] == config.mqtt_url for w in warnings)
    assert warnings[-1]["buffered_readings"] > warnings[0]["buffered_readings"] >= 1

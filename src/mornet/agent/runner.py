"""The agent's loop: read every device each interval, buffer, publish what is buffered."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import structlog

from mornet.agent.buffer import Buffer
from mornet.agent.config import AgentConfig
from mornet.agent.drivers import make_driver
from mornet.agent.drivers.base import DeviceError, Driver
from mornet.agent.publisher import Publisher

log = structlog.get_logger(__name__)


class Agent:
    UNREACHABLE_GRACE_S = 5.0
    """A connection still being set up is not yet unreachable."""
    UNREACHABLE_LOG_EVERY_S = 60.0
    """While the broker is unreachable, say so once, then this often."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.buffer = Buffer(
            config.buffer_path,
            max_readings=config.buffer_max_readings,
            max_age_s=config.buffer_max_age_days * 86_400,
        )
        self.drivers: list[Driver] = [make_driver(d, self.buffer) for d in config.devices]
        self.publisher = Publisher(config)
        self.published = 0
        self._unreachable_since: float | None = None
        self._unreachable_logged_at: float | None = None

    def _report_reachability(self) -> None:
        """Log once, then every minute, that readings pile up because the broker is away —
        an agent pointed at the wrong address must not buffer in silence."""
        now = time.monotonic()
        if self.publisher.connected:
            if self._unreachable_since is not None:
                log.info("agent.broker_reachable_again", broker=self.config.mqtt_url)
            self._unreachable_since = self._unreachable_logged_at = None
            return
        if self._unreachable_since is None:
            self._unreachable_since = now
        if now - self._unreachable_since < self.UNREACHABLE_GRACE_S:
            return
        if (
            self._unreachable_logged_at is None
            or now - self._unreachable_logged_at >= self.UNREACHABLE_LOG_EVERY_S
        ):
            self._unreachable_logged_at = now
            log.warning(
                "agent.broker_unreachable",
                broker=self.config.mqtt_url,
                buffered_readings=self.buffer.pending(),
                for_s=round(now - self._unreachable_since),
            )

    async def read_devices(self) -> int:
        """One reading per device into the buffer; a failing device is logged and skipped."""
        stored = 0
        for driver in self.drivers:
            try:
                reading = await driver.read()
            except DeviceError as exc:
                log.warning("agent.device_unreadable", device=driver.device_id, error=str(exc))
                continue
            self.buffer.add(driver.device_id, reading)
            stored += 1
        self.buffer.enforce_bounds()
        return stored

    async def flush(self, deadline: float) -> None:
        """Publish buffered readings oldest first, in batches, rate-limited, until the buffer
        is empty, the broker is away, or it is time to read the devices again."""
        pause = 1 / self.config.replay_messages_per_s
        while time.monotonic() < deadline:
            rows = self.buffer.oldest(self.config.replay_batch)
            if not rows:
                return
            if not await self.publisher.publish([body for _, body in rows]):
                return
            self.buffer.delete([row_id for row_id, _ in rows])
            self.published += len(rows)
            if len(rows) == self.config.replay_batch:
                await asyncio.sleep(pause)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        self.publisher.start()
        log.info("agent.started", devices=len(self.drivers), pending=self.buffer.pending())
        try:
            next_read = time.monotonic()
            while not stop.is_set():
                if time.monotonic() >= next_read:
                    await self.read_devices()
                    next_read += self.config.interval_s
                    if next_read < time.monotonic():  # fell behind: no burst of catch-up reads
                        next_read = time.monotonic() + self.config.interval_s
                await self.flush(deadline=next_read)
                self._report_reachability()
                with suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=max(0.05, min(1.0, next_read - time.monotonic()))
                    )
        finally:
            self.publisher.stop()
            for driver in self.drivers:
                await driver.close()
            self.buffer.close()

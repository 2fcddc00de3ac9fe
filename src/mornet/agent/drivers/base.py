from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol


class DeviceError(Exception):
    """The device did not answer or answered nonsense; the agent logs it and reads again
    next interval."""


class Driver(Protocol):
    device_id: str

    async def read(self) -> dict[str, Any]:
        """One wire reading without `device_id`/`seq` (the buffer assigns those)."""

    async def close(self) -> None: ...


def now() -> datetime:
    return datetime.now(UTC)


def plug_reading(
    *, power_w: float, energy_wh: float, voltage_v: float | None, current_a: float | None
) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "resource": "E",
        "ts": now().isoformat(),
        "power_w": round(power_w, 3),
        "energy_wh": round(energy_wh, 3),
    }
    if voltage_v is not None:
        reading["voltage_v"] = round(voltage_v, 3)
    if current_a is not None:
        reading["current_a"] = round(current_a, 4)
    return reading

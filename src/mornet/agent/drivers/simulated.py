"""A simulated household plug: a realistic daily load profile, deterministic from a seed."""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any

from mornet.agent.config import SimulatedDevice
from mornet.agent.drivers.base import now


class SimulatedPlug:
    """Base load + morning and evening peaks + seeded appliance bursts (kettle, washer…).
    The same seed gives the same load for the same minute, and the counter integrates it."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device_id = device.id
        self.seed = device.seed
        self.base_load_w = device.base_load_w
        self.resource = device.resource
        self.energy_wh = random.Random(self.seed).uniform(1_000, 50_000)  # noqa: S311
        self.last: datetime | None = None

    def power_at(self, moment: datetime) -> float:
        hour = moment.hour + moment.minute / 60
        morning = 600 * math.exp(-((hour - 7.5) ** 2) / 1.5)
        evening = 1100 * math.exp(-((hour - 19.5) ** 2) / 3.0)
        minute_index = int(moment.timestamp() // 60)
        rng = random.Random(f"{self.seed}:{minute_index}")  # noqa: S311
        burst = rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 2000, 800])  # kettle, washer
        return self.base_load_w + morning + evening + burst + rng.uniform(-15, 15)

    async def read(self) -> dict[str, Any]:
        moment = now()
        power = self.power_at(moment)
        if self.last is not None:
            hours = max((moment - self.last).total_seconds(), 0) / 3600
            self.energy_wh += power * hours
        self.last = moment
        if self.resource.value == "E":
            voltage = 228 + random.Random(f"v{self.seed}:{int(moment.timestamp())}").uniform(-3, 3)  # noqa: S311
            return {
                "resource": "E",
                "ts": moment.isoformat(),
                "power_w": round(power, 3),
                "energy_wh": round(self.energy_wh, 3),
                "voltage_v": round(voltage, 3),
                "current_a": round(power / voltage, 4),
            }
        # Heat and water meters report their index in kWh / m³.
        return {
            "resource": self.resource.value,
            "ts": moment.isoformat(),
            "value": round(self.energy_wh / 1000, 6),
        }

    async def close(self) -> None:
        return None

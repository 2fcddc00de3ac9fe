"""Sonoff POW R3 on Tasmota firmware: `GET /cm?cmnd=Status%208` → `StatusSNS.ENERGY`."""

from __future__ import annotations

from typing import Any

import httpx

from mornet.agent.config import SonoffPowR3Device
from mornet.agent.drivers.base import DeviceError, plug_reading


class TasmotaPlug:
    def __init__(self, device: SonoffPowR3Device, *, timeout: float = 5) -> None:
        self.device_id = device.id
        port = device.port or 80
        self.url = f"http://{device.host}:{port}/cm"
        self.auth = (
            {"user": device.username, "password": device.password} if device.username else {}
        )
        self.http = httpx.AsyncClient(timeout=timeout)

    async def read(self) -> dict[str, Any]:
        try:
            response = await self.http.get(self.url, params={"cmnd": "Status 8", **self.auth})
            response.raise_for_status()
            energy = response.json()["StatusSNS"]["ENERGY"]
            return plug_reading(
                power_w=float(energy["Power"]),
                # Total is the lifetime counter in kWh (it resets only with the device).
                energy_wh=float(energy["Total"]) * 1000,
                voltage_v=float(energy["Voltage"]),
                current_a=float(energy["Current"]),
            )
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise DeviceError(f"tasmota {self.device_id}: {exc!r}") from exc

    async def close(self) -> None:
        await self.http.aclose()

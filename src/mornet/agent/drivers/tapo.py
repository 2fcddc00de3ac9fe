"""TP-Link Tapo P110 over its local KLAP protocol, through python-kasa (the `tapo` extra).

Asks only for the energy methods, so one round trip per reading. `month_energy` is the
plug's counter: it restarts each month, which the platform reads as a counter reset."""

from __future__ import annotations

from typing import Any

from mornet.agent.config import TapoP110Device
from mornet.agent.drivers.base import DeviceError, plug_reading


class TapoPlug:
    def __init__(self, device: TapoP110Device) -> None:
        try:
            from kasa import Credentials, DeviceConfig
            from kasa.deviceconfig import (
                DeviceConnectionParameters,
                DeviceEncryptionType,
                DeviceFamily,
            )
            from kasa.protocols import SmartProtocol
            from kasa.transports import KlapTransportV2
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise RuntimeError("the Tapo driver needs the `tapo` extra (python-kasa)") from exc
        self.device_id = device.id
        host, _, port = device.host.partition(":")
        config = DeviceConfig(
            host=host,
            port_override=int(port) if port else None,
            credentials=Credentials(device.username, device.password),
            connection_type=DeviceConnectionParameters(
                DeviceFamily.SmartTapoPlug, DeviceEncryptionType.Klap, login_version=2
            ),
        )
        self.protocol = SmartProtocol(transport=KlapTransportV2(config=config))

    async def read(self) -> dict[str, Any]:
        try:
            response = await self.protocol.query(
                {"get_energy_usage": None, "get_emeter_data": None}
            )
            usage = response["get_energy_usage"]
            emeter = response.get("get_emeter_data") or {}
            power_mw = emeter.get("power_mw", usage.get("current_power"))
            return plug_reading(
                power_w=float(power_mw) / 1000,
                energy_wh=float(usage["month_energy"]),
                voltage_v=float(emeter["voltage_mv"]) / 1000 if "voltage_mv" in emeter else None,
                current_a=float(emeter["current_ma"]) / 1000 if "current_ma" in emeter else None,
            )
        except Exception as exc:
            raise DeviceError(f"tapo {self.device_id}: {exc!r}") from exc

    async def close(self) -> None:
        await self.protocol.close()

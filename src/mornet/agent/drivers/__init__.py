"""Device drivers: each reads one plug or meter and returns one wire reading."""

from __future__ import annotations

from mornet.agent.buffer import Buffer
from mornet.agent.config import DeviceConfig, SimulatedDevice, SonoffPowR3Device, TapoP110Device
from mornet.agent.drivers.base import Driver


def make_driver(device: DeviceConfig, buffer: Buffer) -> Driver:
    if isinstance(device, SimulatedDevice):
        from mornet.agent.drivers.simulated import SimulatedPlug

        return SimulatedPlug(device)
    if isinstance(device, SonoffPowR3Device):
        if device.firmware == "tasmota":
            from mornet.agent.drivers.tasmota import TasmotaPlug

            return TasmotaPlug(device)
        from mornet.agent.drivers.sonoff_lan import SonoffLanPlug

        return SonoffLanPlug(device, buffer)
    if isinstance(device, TapoP110Device):
        from mornet.agent.drivers.tapo import TapoPlug

        return TapoPlug(device)
    raise ValueError(f"no driver for {device!r}")

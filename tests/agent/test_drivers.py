"""Each driver against a loopback emulator of its device's real protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mornet.agent.buffer import Buffer
from mornet.agent.config import SimulatedDevice, SonoffPowR3Device
from mornet.agent.drivers.base import DeviceError
from mornet.agent.drivers.simulated import SimulatedPlug
from mornet.agent.drivers.sonoff_lan import SonoffLanPlug
from mornet.agent.drivers.tasmota import TasmotaPlug
from mornet.telemetry.schemas import WireReading
from tests.agent.emulators import SonoffState, TasmotaState, sonoff_lan, tasmota


def buffer_at(tmp_path: Path) -> Buffer:
    return Buffer(tmp_path / "buffer.db", max_readings=1000, max_age_s=3600)


async def test_tasmota_reads_status_8_energy() -> None:
    state = TasmotaState(total_kwh=12.5, power=230.0)
    with tasmota(state) as port:
        plug = TasmotaPlug(
            SonoffPowR3Device(id="p", kind="sonoff_pow_r3", host="127.0.0.1", port=port)
        )
        first = await plug.read()
        second = await plug.read()
        await plug.close()
    assert first["resource"] == "E"
    assert first["power_w"] == 230.0
    assert first["voltage_v"] == 229.0
    assert first["current_a"] == pytest.approx(1.004, abs=0.001)
    assert first["energy_wh"] == 12504.0  # Total 12.504 kWh
    assert second["energy_wh"] > first["energy_wh"]
    WireReading.model_validate({**first, "device_id": "p", "seq": 0})  # the gateway accepts it


async def test_tasmota_with_a_web_password_and_a_refusal() -> None:
    state = TasmotaState(password="hunter22")
    with tasmota(state) as port:
        good = TasmotaPlug(
            SonoffPowR3Device(
                id="p",
                kind="sonoff_pow_r3",
                host="127.0.0.1",
                port=port,
                username="admin",
                password="hunter22",
            )
        )
        assert (await good.read())["power_w"] == 230.0
        bad = TasmotaPlug(
            SonoffPowR3Device(
                id="p",
                kind="sonoff_pow_r3",
                host="127.0.0.1",
                port=port,
                username="admin",
                password="nope",
            )
        )
        with pytest.raises(DeviceError):
            await bad.read()
        await good.close()
        await bad.close()


async def test_an_unreachable_device_is_a_device_error() -> None:
    plug = TasmotaPlug(
        SonoffPowR3Device(id="p", kind="sonoff_pow_r3", host="127.0.0.1", port=9), timeout=1
    )
    with pytest.raises(DeviceError):
        await plug.read()
    await plug.close()


async def test_sonoff_lan_decrypts_and_integrates_power_into_a_counter(tmp_path: Path) -> None:
    state = SonoffState(device_id="1000abcdef", device_key="0123456789abcdef-key")
    buffer = buffer_at(tmp_path)
    device = SonoffPowR3Device(
        id="washer",
        kind="sonoff_pow_r3",
        host="127.0.0.1",
        firmware="ewelink_lan",
        device_id=state.device_id,
        device_key=state.device_key,
    )
    with sonoff_lan(state) as port:
        plug = SonoffLanPlug(device.model_copy(update={"port": port}), buffer)
        first = await plug.read()
        await asyncio.sleep(0.3)
        second = await plug.read()
        await plug.close()
        # Restarted agent: the counter continues from the buffer, never from zero.
        again = SonoffLanPlug(device.model_copy(update={"port": port}), buffer)
        third = await again.read()
        await again.close()
    assert first["power_w"] == 1500.0
    assert first["voltage_v"] == 231.4
    assert first["energy_wh"] == 0.0
    # 1500 W for ~0.3 s ≈ 0.125 Wh.
    assert 0.1 < second["energy_wh"] < 0.3
    assert third["energy_wh"] >= second["energy_wh"]
    assert state.requests == 3


async def test_sonoff_lan_with_the_wrong_key_is_refused(tmp_path: Path) -> None:
    state = SonoffState(device_id="1000abcdef", device_key="right-key")
    with sonoff_lan(state) as port:
        plug = SonoffLanPlug(
            SonoffPowR3Device(
                id="w",
                kind="sonoff_pow_r3",
                host="127.0.0.1",
                port=port,
                firmware="ewelink_lan",
                device_id="1000abcdef",
                device_key="wrong-key",
            ),
            buffer_at(tmp_path),
        )
        with pytest.raises(DeviceError, match="device error 400"):
            await plug.read()
        await plug.close()


async def test_the_simulated_plug_is_deterministic_from_its_seed() -> None:
    from datetime import UTC, datetime

    a = SimulatedPlug(SimulatedDevice(id="a", kind="simulated", seed=7))
    b = SimulatedPlug(SimulatedDevice(id="b", kind="simulated", seed=7))
    c = SimulatedPlug(SimulatedDevice(id="c", kind="simulated", seed=8))
    moments = [datetime(2026, 11, 25, h, m, tzinfo=UTC) for h in (3, 8, 19) for m in (0, 1, 2)]
    assert [a.power_at(t) for t in moments] == [b.power_at(t) for t in moments]
    assert [a.power_at(t) for t in moments] != [c.power_at(t) for t in moments]
    assert a.energy_wh == b.energy_wh
    evening = sum(a.power_at(datetime(2026, 11, 25, 19, m, tzinfo=UTC)) for m in range(60))
    night = sum(a.power_at(datetime(2026, 11, 25, 3, m, tzinfo=UTC)) for m in range(60))
    assert evening > night  # a household uses more in the evening
    reading = await a.read()
    WireReading.model_validate({**reading, "device_id": "a", "seq": 0})


async def test_tapo_p110_over_klap_with_the_account_credentials() -> None:
    from mornet.agent.config import TapoP110Device
    from mornet.agent.drivers.tapo import TapoPlug
    from tests.agent.emulators import TapoState, tapo_p110

    state = TapoState(username="owner@example.com", password="tapo-password")
    with tapo_p110(state) as port:
        plug = TapoPlug(
            TapoP110Device(
                id="tapo",
                kind="tapo_p110",
                host=f"127.0.0.1:{port}",
                username="owner@example.com",
                password="tapo-password",
            )
        )
        first = await plug.read()
        second = await plug.read()
        await plug.close()
        wrong = TapoPlug(
            TapoP110Device(
                id="tapo",
                kind="tapo_p110",
                host=f"127.0.0.1:{port}",
                username="owner@example.com",
                password="not-it",
            )
        )
        with pytest.raises(DeviceError):
            await wrong.read()
        await wrong.close()
    assert first["power_w"] == 123.456
    assert first["voltage_v"] == 229.8
    assert first["current_a"] == 0.537
    assert first["energy_wh"] == 45_678
    assert second["energy_wh"] == 45_680
    WireReading.model_validate({**first, "device_id": "tapo", "seq": 0})

"""Sonoff POW R3 on stock firmware, eWeLink LAN (DIY) mode: `POST :8081/zeroconf/info`,
payloads AES-128-CBC encrypted with MD5(device key) and a random IV.

The stock firmware reports power, voltage and current but no lifetime counter, so the driver
integrates power over time into one, kept in the agent's buffer so it survives restarts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mornet.agent.buffer import Buffer
from mornet.agent.config import SonoffPowR3Device
from mornet.agent.drivers.base import DeviceError, plug_reading


def _key(device_key: str) -> bytes:
    return hashlib.md5(device_key.encode()).digest()  # noqa: S324  # the eWeLink protocol's KDF


def encrypt(data: dict[str, Any], device_key: str) -> tuple[str, str]:
    """(base64 ciphertext, base64 iv) as the LAN protocol sends them."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(data).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_key(device_key)), modes.CBC(iv)).encryptor()
    cipher = encryptor.update(plain) + encryptor.finalize()
    return base64.b64encode(cipher).decode(), base64.b64encode(iv).decode()


def decrypt(data_b64: str, iv_b64: str, device_key: str) -> dict[str, Any]:
    decryptor = Cipher(
        algorithms.AES(_key(device_key)), modes.CBC(base64.b64decode(iv_b64))
    ).decryptor()
    padded = decryptor.update(base64.b64decode(data_b64)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    result: dict[str, Any] = json.loads(unpadder.update(padded) + unpadder.finalize())
    return result


class SonoffLanPlug:
    def __init__(self, device: SonoffPowR3Device, buffer: Buffer, *, timeout: float = 5) -> None:
        if not device.device_id or not device.device_key:
            raise ValueError(f"{device.id}: eWeLink LAN mode needs device_id and device_key")
        self.device_id = device.id
        self.ewelink_id = device.device_id
        self.device_key = device.device_key
        self.url = f"http://{device.host}:{device.port or 8081}/zeroconf/info"
        self.http = httpx.AsyncClient(timeout=timeout)
        self.buffer = buffer
        state = buffer.load_state(device.id) or {}
        self.energy_wh = float(state.get("energy_wh", 0.0))
        self.last_power: float | None = state.get("last_power")
        self.last_time: float | None = state.get("last_time")

    async def read(self) -> dict[str, Any]:
        data, iv = encrypt({}, self.device_key)
        request = {
            "sequence": str(int(time.time() * 1000)),
            "deviceid": self.ewelink_id,
            "selfApikey": "123",
            "iv": iv,
            "encrypt": True,
            "data": data,
        }
        try:
            response = await self.http.post(self.url, json=request)
            response.raise_for_status()
            body = response.json()
            if body.get("error", 0) != 0:
                raise DeviceError(f"sonoff {self.device_id}: device error {body.get('error')}")
            values = decrypt(body["data"], body["iv"], self.device_key)
            power = float(values["power"])
            voltage = float(values["voltage"])
            current = float(values["current"])
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise DeviceError(f"sonoff {self.device_id}: {exc!r}") from exc
        moment = time.time()
        if self.last_time is not None and self.last_power is not None:
            # Trapezoid between the two power samples.
            self.energy_wh += (self.last_power + power) / 2 * max(moment - self.last_time, 0) / 3600
        self.last_power, self.last_time = power, moment
        self.buffer.save_state(
            self.device_id,
            {"energy_wh": self.energy_wh, "last_power": power, "last_time": moment},
        )
        return plug_reading(
            power_w=power, energy_wh=self.energy_wh, voltage_v=voltage, current_a=current
        )

    async def close(self) -> None:
        await self.http.aclose()

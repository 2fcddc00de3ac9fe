"""`agent.toml`: who the agent is, where it publishes, and which devices it reads."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mornet.resources import Resource


class SimulatedDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["simulated"]
    seed: int = 1
    resource: Resource = Resource.ELECTRICITY
    base_load_w: float = Field(default=120.0, ge=0)
    """Always-on load (fridge, router); the daily pattern and appliances come on top."""


class TapoP110Device(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["tapo_p110"]
    host: str
    username: str
    """The Tapo (TP-Link) account e-mail: the plug authenticates KLAP with it."""
    password: str


class SonoffPowR3Device(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["sonoff_pow_r3"]
    host: str
    firmware: Literal["ewelink_lan", "tasmota"] = "tasmota"
    port: int | None = None
    """Default: 8081 for eWeLink LAN mode, 80 for Tasmota."""
    device_id: str | None = None
    """eWeLink device id (LAN mode)."""
    device_key: str | None = None
    """eWeLink device key (LAN mode): the AES key is MD5 of it."""
    username: str | None = None
    """Tasmota web user, when its web password is set."""
    password: str | None = None


DeviceConfig = Annotated[
    SimulatedDevice | TapoP110Device | SonoffPowR3Device, Field(discriminator="kind")
]


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    household_id: uuid.UUID
    agent_id: uuid.UUID
    agent_secret: str = Field(min_length=16)
    mqtt_url: str = "mqtt://127.0.0.1:1884"
    """mqtt://host:port, or mqtts://host:port for TLS."""
    mqtt_ca_file: Path | None = None
    """With mqtts://: the CA that signed the broker's certificate (default: the system's)."""
    interval_s: float = Field(default=60, gt=0)
    buffer_path: Path = Path("mornet-agent-buffer.db")
    buffer_max_readings: int = Field(default=2_000_000, gt=0)
    """Beyond this, the oldest readings are dropped (and logged) so the Pi's disk survives."""
    buffer_max_age_days: float = Field(default=60, gt=0)
    replay_batch: int = Field(default=200, gt=0, le=1000)
    """Readings per message when catching up after an outage."""
    replay_messages_per_s: float = Field(default=20, gt=0)
    """Rate limit while catching up, so a returning agent does not flood the broker."""
    devices: list[DeviceConfig] = Field(default_factory=list)


def load_config(path: Path) -> AgentConfig:
    with path.open("rb") as handle:
        return AgentConfig.model_validate(tomllib.load(handle))

"""The telemetry wire format shared by the edge agent and the gateway (stdlib + pydantic only,
so the agent carries no server dependencies).

Topic `mornet/<household_id>/telemetry`, QoS 1. Payload: a JSON object
`{"agent_id", "readings": [...], "hmac"}` where `hmac` is HMAC-SHA256, hex, over the canonical
JSON of the object without `hmac` (keys sorted, no spaces, UTF-8), keyed with SHA-256 of the
agent's secret. A plug reading is `{device_id, resource: "E", ts, seq, power_w, energy_wh,
voltage_v, current_a}` (energy_wh is the device's cumulative counter); a meter reading carries
`value`, the meter's cumulative index in the resource's unit (kWh for H, m³ for W).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

TOPIC_PREFIX = "mornet/"
TOPIC_SUFFIX = "/telemetry"
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_READINGS_PER_MESSAGE = 1000


def telemetry_topic(household_id: str) -> str:
    return f"{TOPIC_PREFIX}{household_id}{TOPIC_SUFFIX}"


def household_of_topic(topic: str) -> str | None:
    if topic.startswith(TOPIC_PREFIX) and topic.endswith(TOPIC_SUFFIX):
        middle = topic[len(TOPIC_PREFIX) : -len(TOPIC_SUFFIX)]
        return middle if middle and "/" not in middle else None
    return None


def signing_key(agent_secret: str) -> bytes:
    """The HMAC key: SHA-256 of the secret, which is also what the platform stores."""
    return hashlib.sha256(agent_secret.encode()).digest()


def canonical(message: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in message.items() if k != "hmac"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(message: dict[str, Any], key: bytes) -> dict[str, Any]:
    return {**message, "hmac": hmac.new(key, canonical(message), hashlib.sha256).hexdigest()}


def signature_valid(message: dict[str, Any], key: bytes) -> bool:
    sent = message.get("hmac")
    if not isinstance(sent, str):
        return False
    expected = hmac.new(key, canonical(message), hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent, expected)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()

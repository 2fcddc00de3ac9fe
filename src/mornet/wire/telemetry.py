"""The telemetry wire format shared by the edge agent, households and the gateway (stdlib and
`cryptography` only, so the agent carries no server dependencies).

Topic `mornet/<household_id>/telemetry`, QoS 1. Payload: a JSON object
`{"agent_id", "readings": [...], "sig"}` where `sig` is an Ed25519 signature, hex, over the
canonical JSON of the object without `sig` (keys sorted, no spaces, UTF-8). Agents send that
canonical JSON itself with `sig` added last (`signed_payload`), so the gateway can check the
signature over the bytes it received (`signed_part`) without writing the JSON again.

Keys: the agent's private key is derived from the secret it was given at provisioning
(`signing_seed`); the platform keeps only the public key, and for the broker login only a slow
(argon2) hash — a copy of the database can neither sign telemetry nor log in as an agent.

A plug reading is `{device_id, resource: "E", ts, seq, power_w, energy_wh,
voltage_v, current_a}` (energy_wh is the device's cumulative counter); a meter reading carries
`value`, the meter's cumulative index in the resource's unit (kWh for H, m³ for W).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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


__all__ = ["Ed25519PrivateKey", "Ed25519PublicKey"]
SIGNATURE_FIELD = "sig"
_SEED_LABEL = b"mornet agent ed25519 v1:"


def secret_digest(agent_secret: str) -> bytes:
    """SHA-256 of the agent's secret: what agents provisioned before Ed25519 had stored, so
    their rows migrate to public keys without re-provisioning."""
    return hashlib.sha256(agent_secret.encode()).digest()


def signing_seed(agent_secret: str) -> bytes:
    return seed_of_digest(secret_digest(agent_secret))


def seed_of_digest(digest: bytes) -> bytes:
    return hashlib.sha256(_SEED_LABEL + digest).digest()


def private_key(agent_secret: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(signing_seed(agent_secret))


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes_raw().hex()


def canonical(message: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in message.items() if k != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(message: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return {**message, SIGNATURE_FIELD: key.sign(canonical(message)).hex()}


def signed_payload(message: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The message as sent: its canonical JSON, with `sig` (the signature over exactly those
    bytes) added as the last member."""
    return with_signature(canonical(message), key)


def with_signature(body: bytes, key: Ed25519PrivateKey) -> bytes:
    """`body` (a JSON object's bytes, canonical) with `sig`, its signature, as last member."""
    return body[:-1] + b',"sig":"' + key.sign(body).hex().encode() + b'"}'


_SIG_TAIL = len(b',"sig":"') + 128 + len(b'"}')


def signed_part(payload: bytes) -> tuple[bytes, bytes] | None:
    """(the bytes before a trailing `,"sig":"…"}` closed again, the signature) of a payload
    written by `signed_payload`; None for any other layout."""
    if len(payload) <= _SIG_TAIL or not payload.endswith(b'"}'):
        return None
    cut = len(payload) - _SIG_TAIL
    if payload[cut : cut + 8] != b',"sig":"':
        return None
    try:
        signature = bytes.fromhex(payload[cut + 8 : -2].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return payload[:cut] + b"}", signature


def payload_signature_valid(payload: bytes, key: Ed25519PublicKey) -> bool:
    """Whether the payload's signature covers the bytes before it (see `signed_payload`).
    Those bytes are what the agent signed, so a message read from them is the agent's."""
    parts = signed_part(payload)
    return parts is not None and signed_by(*parts, key)


def signature_valid(message: dict[str, Any], key: Ed25519PublicKey) -> bool:
    sent = message.get(SIGNATURE_FIELD)
    if not isinstance(sent, str) or len(sent) != 128:
        return False
    try:
        signature = bytes.fromhex(sent)
    except ValueError:
        return False
    return signed_by(canonical(message), signature, key)


def signed_by(body: bytes, signature: bytes, key: Ed25519PublicKey) -> bool:
    """Whether `signature` is `key`'s over `body`."""
    try:
        key.verify(signature, body)
    except InvalidSignature:
        return False
    return True


def verifier(public_key: str) -> Ed25519PublicKey:
    """The public key of an agent, from its 64 hex characters."""
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()

"""Password hashing (argon2id) and access tokens (HS256 JWT)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps login time the same either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

ISSUER = "mornet"
AUDIENCE = "mornet-api"
ALGORITHM = "HS256"


def hash_password_now(password: str) -> str:
    return _hasher.hash(password)


def verify_password_now(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# argon2 costs about 100 ms of CPU: run in a worker thread, never on the event loop that also
# serves the gateway and the submitter.
async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hash_password_now, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password_now, password_hash, password)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    token_version: int
    expires_at: float
    """POSIX seconds."""


def encode_access_token(
    *, user_id: uuid.UUID, token_version: int, secret: str, ttl: timedelta
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "ver": token_version,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> AccessClaims | None:
    """The token's claims if its signature, issuer, audience and expiry hold, else None."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss", "aud"]},
        )
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            token_version=int(claims["ver"]),
            expires_at=float(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None

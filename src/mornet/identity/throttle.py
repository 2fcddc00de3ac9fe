"""Limits on guessing: failed logins per email and per client address, registrations per
address. Counted in this process (each API replica keeps its own count, so N replicas allow
N times the limit: still bounded, and nothing to run beside the platform)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from mornet.errors import MornetError

MAX_KEYS = 100_000
"""Keys remembered at most; the oldest are forgotten first, so memory stays bounded."""


class TooManyAttempts(MornetError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after} s")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


@dataclass
class Throttle:
    """At most `limit` events per key in any `window_s` seconds."""

    limit: int
    window_s: float
    _events: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self.window_s:
            events.popleft()
        return events

    def check(self, *keys: str) -> None:
        """Refuse with `TooManyAttempts` when any key is at its limit."""
        now = time.monotonic()
        for key in keys:
            events = self._recent(key, now)
            if len(events) >= self.limit:
                raise TooManyAttempts(max(1, math.ceil(events[0] + self.window_s - now)))

    def record(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            events = self._recent(key, now)
            events.append(now)
            self._events[key] = events
            self._events.move_to_end(key)
        while len(self._events) > MAX_KEYS:
            self._events.popitem(last=False)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)


@dataclass(frozen=True)
class Attempt:
    """Who is trying, and the throttle that counts them."""

    throttle: Throttle
    client: str


def client_of(request: object) -> str:
    """The client address of an HTTP request (set uvicorn's --proxy-headers and
    --forwarded-allow-ips behind a reverse proxy, so this is the real client)."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")

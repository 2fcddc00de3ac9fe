"""An MQTT broker address from `mqtt://user:password@host:port` or `mqtts://…` for TLS
(shared with the agent)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise ValueError(
                f"unsupported MQTT URL {url!r}: use mqtt://host:port or mqtts://host:port"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def secure(self, client: Any, ca_file: Path | None = None) -> None:
        """Turn on TLS for a paho client when the URL asks for it: the broker's certificate
        is checked against `ca_file`, or the system's CAs, and its host name."""
        if self.tls:
            client.tls_set(ca_certs=str(ca_file) if ca_file else None, cert_reqs=ssl.CERT_REQUIRED)

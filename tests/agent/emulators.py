"""Plugs on loopback that speak the real devices' local protocols, for the drivers' tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mornet.agent.drivers.sonoff_lan import decrypt, encrypt


class TasmotaState:
    def __init__(
        self, *, total_kwh: float = 12.5, power: float = 230.0, password: str | None = None
    ) -> None:
        self.total_kwh = total_kwh
        self.power = power
        self.password = password
        self.requests = 0


class SonoffState:
    def __init__(self, *, device_id: str, device_key: str, power: float = 1500.0) -> None:
        self.device_id = device_id
        self.device_key = device_key
        self.power = power
        self.requests = 0


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def tasmota(state: TasmotaState) -> Iterator[int]:
    """Tasmota's web command API: /cm?cmnd=Status%208 → StatusSNS.ENERGY."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path != "/cm" or query.get("cmnd") != "Status 8":
                _reply(self, 200, {"Command": "Unknown"})
                return
            if state.password and query.get("password") != state.password:
                _reply(self, 401, {"WARNING": "Need user=<username>&password=<password>"})
                return
            state.requests += 1
            state.total_kwh += state.power / 1000 / 60  # a minute at this power
            voltage = 229.0
            _reply(
                self,
                200,
                {
                    "StatusSNS": {
                        "Time": "2026-11-25T10:00:00",
                        "ENERGY": {
                            "TotalStartTime": "2026-01-01T00:00:00",
                            "Total": round(state.total_kwh, 3),
                            "Yesterday": 3.1,
                            "Today": 1.2,
                            "Power": state.power,
                            "ApparentPower": state.power,
                            "ReactivePower": 0,
                            "Factor": 1.0,
                            "Voltage": voltage,
                            "Current": round(state.power / voltage, 3),
                        },
                    }
                },
            )

    with serve(Handler) as port:
        yield port


@contextmanager
def sonoff_lan(state: SonoffState) -> Iterator[int]:
    """eWeLink LAN (DIY) mode: encrypted POST /zeroconf/info."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            request = json.loads(self.rfile.read(length))
            if self.path != "/zeroconf/info" or request.get("deviceid") != state.device_id:
                _reply(self, 200, {"seq": 1, "error": 404})
                return
            try:
                decrypt(request["data"], request["iv"], state.device_key)
            except (ValueError, KeyError):
                _reply(self, 200, {"seq": 1, "error": 400})  # wrong key: cannot decrypt
                return
            state.requests += 1
            data, iv = encrypt(
                {
                    "switch": "on",
                    "power": f"{state.power:.2f}",
                    "voltage": "231.40",
                    "current": f"{state.power / 231.4:.3f}",
                },
                state.device_key,
            )
            _reply(
                self,
                200,
                {
                    "seq": state.requests,
                    "sequence": request.get("sequence"),
                    "error": 0,
                    "iv": iv,
                    "encrypt": True,
                    "data": data,
                },
            )

    with serve(Handler) as port:
        yield port


class TapoState:
    def __init__(self, *, username: str, password: str, month_energy_wh: int = 45_678) -> None:
        self.username = username
        self.password = password
        self.month_energy_wh = month_energy_wh
        self.power_mw = 123_456
        self.requests = 0
        self.sessions: dict[str, tuple[bytes, bytes]] = {}


@contextmanager
def tapo_p110(state: TapoState) -> Iterator[int]:
    """A Tapo P110 speaking KLAP v2 (TP-Link's local protocol): handshake1/handshake2 with
    the account's credentials, then AES-CBC requests signed per sequence number."""
    import hashlib
    import os

    from kasa.transports.klaptransport import KlapEncryptionSession

    def sha(data: bytes, algorithm: str = "sha256") -> bytes:
        return hashlib.new(algorithm, data).digest()

    auth_hash = sha(sha(state.username.encode(), "sha1") + sha(state.password.encode(), "sha1"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return

        def _send(self, status: int, body: bytes, cookie: str | None = None) -> None:
            self.send_response(status)
            if cookie:
                self.send_header("Set-Cookie", f"TP_SESSIONID={cookie};TIMEOUT=86400")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _session(self) -> str:
            cookie = self.headers.get("Cookie", "")
            for part in cookie.split(";"):
                name, _, value = part.strip().partition("=")
                if name == "TP_SESSIONID":
                    return value
            return ""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            url = urlsplit(self.path)
            if url.path == "/app/handshake1":
                remote_seed = os.urandom(16)
                session_id = os.urandom(8).hex()
                state.sessions[session_id] = (body, remote_seed)
                self._send(200, remote_seed + sha(body + remote_seed + auth_hash), session_id)
                return
            seeds = state.sessions.get(self._session())
            if seeds is None:
                self._send(403, b"")
                return
            local_seed, remote_seed = seeds
            if url.path == "/app/handshake2":
                ok = body == sha(remote_seed + local_seed + auth_hash)
                self._send(200 if ok else 403, b"")
                return
            seq = int(parse_qs(url.query)["seq"][0])
            session = KlapEncryptionSession(local_seed, remote_seed, auth_hash)
            session._seq = seq
            session._generate_cipher()
            request = json.loads(session.decrypt(body))
            state.requests += 1
            methods = (
                [r["method"] for r in request["params"]["requests"]]
                if request["method"] == "multipleRequest"
                else [request["method"]]
            )
            results = {
                "get_energy_usage": {
                    "today_runtime": 600,
                    "month_runtime": 20_000,
                    "today_energy": 1_200,
                    "month_energy": state.month_energy_wh,
                    "current_power": state.power_mw,
                    "local_time": "2026-11-25 10:00:00",
                },
                "get_emeter_data": {
                    "current_ma": 537,
                    "voltage_mv": 229_800,
                    "power_mw": state.power_mw,
                    "energy_wh": state.month_energy_wh,
                },
            }
            if request["method"] == "multipleRequest":
                answer = {
                    "error_code": 0,
                    "result": {
                        "responses": [
                            {"method": m, "error_code": 0, "result": results.get(m, {})}
                            for m in methods
                        ]
                    },
                }
            else:
                answer = {"error_code": 0, "result": results.get(methods[0], {})}
            state.month_energy_wh += 2
            session._seq = seq - 1  # the reply is encrypted under the request's sequence
            payload, _ = session.encrypt(json.dumps(answer).encode())
            self._send(200, payload)

    with serve(Handler) as port:
        yield port

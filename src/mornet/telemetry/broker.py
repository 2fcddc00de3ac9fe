"""The embedded MQTT broker (amqtt) for `mornet up`: agents log in with their id and secret
and may publish only to their own household's topic; the in-process gateway logs in with a
one-time internal password and may subscribe to everything.

Upstream amqtt drops an existing session (and its subscriptions) as soon as a CONNECT with
the same client id arrives, before it checks credentials. `GuardedBroker` checks credentials
and the client id first, so no client — known or not — can disturb another client's session:
an agent must connect as `mornet-agent-<agent_id>`, and no one but the gateway may use any
other client id."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from mornet.wire.telemetry import household_of_topic

log = structlog.get_logger(__name__)
GATEWAY_USER = "mornet-gateway"
AGENT_CLIENT_PREFIX = "mornet-agent-"
AgentVerifier = Callable[[uuid.UUID, str], Awaitable[uuid.UUID | None]]


@dataclass
class Principals:
    """Who is connected: client id → the household it may publish for ("*" = the gateway)."""

    gateway_password: str
    verify_agent: AgentVerifier
    allowed: dict[str, str] = field(default_factory=dict)


class AgentAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        principals: Any = None

    async def authenticate(self, *, session: Session) -> bool | None:
        principals: Principals = self.config.principals
        username, password = session.username or "", session.password or ""
        client_id = session.client_id or ""
        if username == GATEWAY_USER:
            ok = secrets.compare_digest(password, principals.gateway_password)
            if ok and client_id.startswith(AGENT_CLIENT_PREFIX):
                log.warning("broker.gateway_with_agent_client_id", client_id=client_id)
                return False
            if ok:
                principals.allowed[client_id] = "*"
            return ok
        try:
            agent_id = uuid.UUID(username)
        except ValueError:
            return False
        if client_id != agent_client_id(agent_id):
            # Otherwise a valid agent could take over the gateway's or another agent's session.
            log.warning("broker.agent_client_id_refused", agent_id=username, client_id=client_id)
            return False
        household_id = await principals.verify_agent(agent_id, password)
        if household_id is None:
            log.warning("broker.agent_refused", agent_id=username)
            return False
        principals.allowed[client_id] = str(household_id)
        return True


def agent_client_id(agent_id: uuid.UUID | str) -> str:
    """The only MQTT client id an agent may use on the embedded broker."""
    return f"{AGENT_CLIENT_PREFIX}{agent_id}"


class GuardedBroker(Broker):
    """amqtt's broker, with credentials checked before any session is touched."""

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, connecting = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except (AMQTTError, NoDataError) as exc:
            raise AMQTTError(exc) from exc
        except MQTTError:
            await writer.close()
            raise
        verdict = await super()._authenticate(connecting, ListenerConfig())
        if not verdict or not connecting.client_id:
            # Refused before upstream may delete or take over a session of that client id.
            connecting.parent = 0
            handler.attach(connecting, reader, writer)
            with contextlib.suppress(Exception):
                await handler.mqtt_connack_authorize(False)
            await writer.close()
            raise AMQTTError(f"client {connecting.client_id!r} refused at CONNECT")
        return await self._continue_session(handler, connecting)

    async def _continue_session(
        self, handler: BrokerProtocolHandler, connecting: Session
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Upstream's session lookup (amqtt 0.12), run once the client is authenticated."""
        client_session = connecting
        if client_session.clean_session:
            await self._delete_session(client_session.client_id)
            client_session.parent = 0
        elif client_session.client_id in self._sessions:
            existing, _ = self._sessions[client_session.client_id]
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "keep_alive",
                "username",
                "password",
            ):
                setattr(existing, name, getattr(client_session, name))
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(delay, int):
            client_session.keep_alive += delay
        client_session.mornet_authenticated = True
        return handler, client_session

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        # Already decided in `_initialize_client_session`; don't hash the secret twice.
        return bool(getattr(session, "mornet_authenticated", False))


class HouseholdTopicPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        principals: Any = None

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        principals: Principals = self.config.principals
        if session is None or topic is None:
            return False
        scope = principals.allowed.get(session.client_id or "")
        if scope == "*":
            return True
        if action == Action.PUBLISH:
            return scope is not None and household_of_topic(topic) == scope
        return False  # agents neither subscribe nor receive


class EmbeddedBroker:
    def __init__(self, *, host: str, port: int, verify_agent: AgentVerifier) -> None:
        self.host, self.port = host, port
        self.principals = Principals(
            gateway_password=secrets.token_urlsafe(32), verify_agent=verify_agent
        )
        self.broker = GuardedBroker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                "plugins": {
                    f"{__name__}.AgentAuthPlugin": {"principals": self.principals},
                    f"{__name__}.HouseholdTopicPlugin": {"principals": self.principals},
                },
            }
        )

    @property
    def gateway_url(self) -> str:
        return f"mqtt://{GATEWAY_USER}:{self.principals.gateway_password}@{self.host}:{self.port}"

    async def start(self) -> None:
        await self.broker.start()
        log.info("broker.started", host=self.host, port=self.port)

    async def stop(self) -> None:
        await self.broker.shutdown()

"""The embedded MQTT broker (amqtt) for `mornet up`: agents log in with their id and secret
and may publish only to their own household's topic; the in-process gateway logs in with a
one-time internal password and may subscribe to everything."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from mornet.telemetry.wire import household_of_topic

log = structlog.get_logger(__name__)
GATEWAY_USER = "mornet-gateway"
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
            if ok:
                principals.allowed[client_id] = "*"
            return ok
        try:
            agent_id = uuid.UUID(username)
        except ValueError:
            return False
        household_id = await principals.verify_agent(agent_id, password)
        if household_id is None:
            log.warning("broker.agent_refused", agent_id=username)
            return False
        principals.allowed[client_id] = str(household_id)
        return True


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
        self.broker = Broker(
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

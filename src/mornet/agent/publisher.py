"""Publishing signed batches with QoS 1 and learning when the broker acknowledged them."""

from __future__ import annotations

import asyncio
import queue
from typing import Any

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from mornet.agent.config import AgentConfig
from mornet.wire.broker import BrokerAddress
from mornet.wire.telemetry import private_key, signed_payload, telemetry_topic

log = structlog.get_logger(__name__)


class Publisher:
    def __init__(self, config: AgentConfig, *, ack_timeout: float = 10) -> None:
        self.topic = telemetry_topic(str(config.household_id))
        self.agent_id = str(config.agent_id)
        self.key = private_key(config.agent_secret)
        self.ack_timeout = ack_timeout
        self.address = BrokerAddress.parse(config.mqtt_url)
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"mornet-agent-{config.agent_id}",
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        # The broker authenticates the agent with its id and secret where it checks at all.
        self.client.username_pw_set(self.agent_id, config.agent_secret)
        self.address.secure(self.client, config.mqtt_ca_file)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = lambda *a: log.info("agent.connected", broker=self.address.host)
        self.client.on_disconnect = lambda *a: log.warning("agent.disconnected")

    def start(self) -> None:
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected())

    def message(self, readings: list[dict[str, Any]]) -> bytes:
        return signed_payload({"agent_id": self.agent_id, "readings": readings}, self.key)

    def _publish_and_wait(self, payload: bytes) -> bool:
        info = self.client.publish(self.topic, payload, qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout=self.ack_timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    async def publish(self, readings: list[dict[str, Any]]) -> bool:
        """True once the broker acknowledged the message (PUBACK); False leaves the
        readings in the buffer for the next attempt."""
        if not self.connected:
            return False
        return await asyncio.to_thread(self._publish_and_wait, self.message(readings))


class SendFailed(Exception):
    """The broker did not take the message; the text says what it answered."""


def send_readings(
    config: AgentConfig, readings: list[dict[str, Any]], *, timeout: float = 10
) -> str:
    """Sign `readings` as this agent, publish them once with QoS 1 and return the broker's
    answer (`mornet agent send`). Raises `SendFailed` with the broker's refusal or silence."""
    publisher = Publisher(config, ack_timeout=timeout)
    answers: queue.Queue[Any] = queue.Queue()
    publisher.client.on_connect = lambda _c, _u, _f, reason, _p: answers.put(reason)
    where = f"{publisher.address.host}:{publisher.address.port}"
    publisher.start()
    try:
        try:
            reason = answers.get(timeout=timeout)
        except queue.Empty:
            raise SendFailed(f"no answer from the broker at {where} within {timeout:g} s") from None
        if reason.is_failure:
            raise SendFailed(f"the broker at {where} refused the connection: {reason}")
        if not publisher._publish_and_wait(publisher.message(readings)):
            raise SendFailed(f"the broker at {where} did not acknowledge the message")
        return f"PUBACK from {where}: {len(readings)} readings on {publisher.topic}"
    finally:
        publisher.stop()

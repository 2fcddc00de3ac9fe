"""MQTT for the gateway: a paho client (measured far faster than asyncio wrappers) in its
own thread, handing messages to asyncio and acknowledging each one only after the gateway
made it durable — so a gateway killed mid-stream loses nothing: the broker redelivers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from mornet.wire.broker import BrokerAddress

log = structlog.get_logger(__name__)
MessageHandler = Callable[[str, bytes], Awaitable[Any]]


class Subscriber:
    """A persistent-session QoS 1 subscription whose messages are acknowledged after
    `handler` returns. `shared_group` uses `$share/<group>/…` so gateway instances split the
    stream (Mosquitto, EMQX)."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        topic: str,
        client_id: str,
        handler: MessageHandler,
        shared_group: str | None = None,
        workers: int = 64,
        queue_size: int = 1000,
        ca_file: Path | None = None,
    ) -> None:
        self.address = address
        self.topic = f"$share/{shared_group}/{topic}" if shared_group else topic
        self.handler = handler
        self.workers = workers
        self.queue: asyncio.Queue[paho.MQTTMessage] = asyncio.Queue()
        # Free places in the queue, taken by the network thread and given back once a message
        # is acknowledged: back-pressure without a cross-thread round trip per message.
        self._room = threading.Semaphore(queue_size)
        self._arrivals: list[paho.MQTTMessage] = []
        self._arrivals_lock = threading.Lock()
        self.connected = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        self.client.manual_ack_set(True)
        self.client.max_inflight_messages_set(queue_size)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        address.secure(self.client, ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscriptions = 0

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("mqtt.connect_refused", reason=str(reason))
            return
        # Subscribed on every connect: a broker that lost our session (or handed it to someone
        # else) must not leave us connected but deaf.
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(
        self, client: paho.Client, _u: Any, _mid: Any, reasons: list[Any], _p: Any
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            # Without the subscription agents' messages would be acknowledged by the broker
            # and never reach us: try again until the broker grants it.
            log.error("mqtt.subscription_refused", topic=self.topic, reasons=str(reasons))
            timer = threading.Timer(1.0, lambda: client.subscribe(self.topic, qos=1))
            timer.daemon = True
            timer.start()
            return
        self.subscriptions += 1
        # Connected means subscribed: until the broker grants the subscription, a new
        # session drops what agents send.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.set)
        log.info(
            "mqtt.subscribed", topic=self.topic, host=self.address.host, port=self.address.port
        )

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.clear)
        log.warning("mqtt.disconnected", reason=str(reason))

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        assert self._loop is not None
        # Blocks the network thread while the queue is full: back-pressure to the broker.
        while not self._room.acquire(timeout=1):
            if self._stopping:
                return  # never acknowledged: the broker delivers it again later
        with self._arrivals_lock:
            self._arrivals.append(message)
            first = len(self._arrivals) == 1
        if first:
            # One wake-up of the event loop per burst, not per message: a cross-thread call
            # costs a pipe write and a loop iteration.
            self._loop.call_soon_threadsafe(self._take_arrivals)

    def _take_arrivals(self) -> None:
        with self._arrivals_lock:
            arrived, self._arrivals = self._arrivals, []
        for message in arrived:
            self.queue.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self.queue.get()
            while True:
                try:
                    await self.handler(message.topic, bytes(message.payload))
                    break
                except Exception:
                    # The database or the bus is down: keep the message unacknowledged and
                    # retry, so it is neither lost nor acknowledged early.
                    log.exception("mqtt.handler_failed", topic=message.topic)
                    await asyncio.sleep(1)
            self.client.ack(message.mid, message.qos)
            self._room.release()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    async def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

"""The message bus between the platform's roles: one interface, two engines.

- `InProcessBus` (embedded mode): queues inside the process.
- `RabbitBus` (production): a durable topic exchange, durable queues, persistent messages and
  publisher confirms; a message is acknowledged only after its handler committed, so a crash
  redelivers it — handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)
Handler = Callable[[list[bytes]], Awaitable[None]]
"""Receives a batch of messages (one or more) and returns once they are durably handled."""
EXCHANGE = "mornet"
RETRY_DELAY_SECONDS = 1.0
MAX_BATCH = 100
LINGER_SECONDS = 0.02

# Topics (routing keys) of the platform's events.
READINGS = "telemetry.readings"


class Bus(Protocol):
    async def publish(self, topic: str, body: bytes) -> None:
        """Returns once the bus holds the message durably."""

    async def consume(self, topic: str, queue: str, handler: Handler) -> None:
        """Deliver every message of `topic` to `handler`, in batches, through the named
        durable queue."""

    async def close(self) -> None: ...


class InProcessBus:
    """Queues inside the process. Nothing here survives a crash, so `publish` returns only
    once every consumer has handled the message: the caller acknowledges its source (the
    MQTT broker) after that, never before, and a crash makes the source deliver again."""

    def __init__(self) -> None:
        self._queues: dict[str, list[asyncio.Queue[tuple[bytes, asyncio.Future[None]]]]] = (
            defaultdict(list)
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def publish(self, topic: str, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        handled = []
        for queue in self._queues.get(topic, []):
            done: asyncio.Future[None] = loop.create_future()
            await queue.put((body, done))
            handled.append(done)
        await asyncio.gather(*handled)

    async def consume(self, topic: str, queue: str, handler: Handler) -> None:
        inbox: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] = asyncio.Queue()
        self._queues[topic].append(inbox)
        self._tasks.append(
            asyncio.create_task(self._run(queue, inbox, handler), name=f"bus:{queue}")
        )

    async def _run(
        self,
        name: str,
        inbox: asyncio.Queue[tuple[bytes, asyncio.Future[None]]],
        handler: Handler,
    ) -> None:
        while True:
            batch = [await inbox.get()]
            while len(batch) < MAX_BATCH and not inbox.empty():
                batch.append(inbox.get_nowait())
            while True:
                try:
                    await handler([body for body, _ in batch])
                    break
                except Exception:
                    log.exception("bus.handler_failed", queue=name)
                    await asyncio.sleep(RETRY_DELAY_SECONDS)
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
                inbox.task_done()

    async def idle(self) -> None:
        """Wait until every queued message was handled (tests)."""
        for queues in list(self._queues.values()):
            for queue in queues:
                await queue.join()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class RabbitBus:
    def __init__(self, url: str, *, prefetch: int = 2 * MAX_BATCH) -> None:
        self.url = url
        self.prefetch = prefetch
        self._connection: Any = None
        self._exchange: Any = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def _ensure(self) -> None:
        import aio_pika

        async with self._lock:
            if self._exchange is not None:
                return
            connection = await aio_pika.connect_robust(self.url)
            channel = await connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self._connection = connection

    async def publish(self, topic: str, body: bytes) -> None:
        import aio_pika

        await self._ensure()
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        # With publisher confirms, this returns when the broker has the message.
        await self._exchange.publish(message, routing_key=topic)

    async def consume(self, topic: str, queue: str, handler: Handler) -> None:
        import aio_pika

        await self._ensure()
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        declared = await channel.declare_queue(queue, durable=True)
        await declared.bind(exchange, routing_key=topic)
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        await declared.consume(inbox.put)
        self._tasks.append(
            asyncio.create_task(self._run(queue, inbox, handler), name=f"bus:{queue}")
        )

    async def _run(self, name: str, inbox: asyncio.Queue[Any], handler: Handler) -> None:
        while True:
            pending = [await inbox.get()]
            # Linger briefly so that a burst becomes one batch (one transaction downstream).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LINGER_SECONDS):
                    while len(pending) < MAX_BATCH:
                        pending.append(await inbox.get())
            try:
                await handler([m.body for m in pending])
            except Exception:
                log.exception("bus.handler_failed", queue=name)
                await asyncio.sleep(RETRY_DELAY_SECONDS)
                for message in pending:
                    await message.nack(requeue=True)
            else:
                # Acknowledged only after the handler committed: a crash redelivers.
                for message in pending:
                    await message.ack()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._exchange = None

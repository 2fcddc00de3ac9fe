"""The message bus between the platform's roles: one interface, two engines.

- `InProcessBus` (embedded mode): queues inside the process.
- `RabbitBus` (production): a durable topic exchange, durable queues, persistent messages and
  publisher confirms; a message is acknowledged only after its handler committed, so a crash
  redelivers it — handlers are idempotent.

Both deliver through `isolate`: a batch whose handler fails for a reason other than an
outage is retried a few times, then split, until the message that fails on its own is found;
that one goes to the dead letters with the exception as its reason and the rest flows on.
An outage (database or network down) is retried without end and never dead-letters anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog

from mornet.config import Settings
from mornet.db import is_transient

log = structlog.get_logger(__name__)
Handler = Callable[[list[bytes]], Awaitable[None]]
"""Receives a batch of messages (one or more) and returns once they are durably handled."""
DeadLetterHandler = Callable[[bytes, str], Awaitable[None]]
"""Keeps a message that can never be handled, with the reason, durably."""
EXCHANGE = "mornet"
DEAD_LETTER_EXCHANGE = "mornet.dead"


def dead_letter_queue(queue: str) -> str:
    """Where the dead letters of `queue` wait for an operator."""
    return f"{queue}.dead"


RETRY_DELAY_SECONDS = 1.0
DEFAULT_ATTEMPTS = 5
CLOSE_GRACE_SECONDS = 10.0
"""How long closing the in-process bus waits for the batch in hand to be handled."""
MAX_BATCH = 100
LINGER_SECONDS = 0.02

# Topics (routing keys) of the platform's events.
READINGS = "telemetry.readings"


class Unprocessable(Exception):
    """Raised by a handler for a message that can never be handled (no retry helps)."""


class Bus(Protocol):
    async def publish(self, topic: str, body: bytes) -> None:
        """Returns once the bus holds the message durably."""

    async def consume(
        self,
        topic: str,
        queue: str,
        handler: Handler,
        *,
        dead_letter: DeadLetterHandler | None = None,
    ) -> None:
        """Deliver every message of `topic` to `handler`, in batches, through the named
        durable queue; a message that fails on its own goes to `dead_letter`."""

    async def close(self) -> None: ...


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


async def isolate(
    handler: Handler, bodies: list[bytes], *, attempts: int, name: str
) -> dict[int, str]:
    """Hand `bodies` to `handler` until it succeeds. Returns the indexes of the messages that
    failed `attempts` times on their own, with the reason; every other message was handled."""
    return await _isolate(handler, bodies, list(range(len(bodies))), attempts, name)


async def _isolate(
    handler: Handler, bodies: list[bytes], indexes: list[int], attempts: int, name: str
) -> dict[int, str]:
    failures = 0
    delay = 0.05
    while True:
        try:
            await handler([bodies[i] for i in indexes])
            return {}
        except Exception as exc:
            if is_transient(exc):
                # An outage: nothing is wrong with the messages. Wait for it to pass.
                log.warning("bus.handler_unavailable", queue=name, error=_reason(exc))
                await asyncio.sleep(RETRY_DELAY_SECONDS)
                continue
            failures += 1
            if failures < attempts and not isinstance(exc, Unprocessable):
                log.warning("bus.handler_failed", queue=name, attempt=failures, error=_reason(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_DELAY_SECONDS)
                continue
            if len(indexes) == 1:
                log.error("bus.dead_letter", queue=name, error=_reason(exc))
                return {indexes[0]: _reason(exc)}
            middle = len(indexes) // 2
            return {
                **await _isolate(handler, bodies, indexes[:middle], attempts, name),
                **await _isolate(handler, bodies, indexes[middle:], attempts, name),
            }


async def _keep_dead_letter(keep: DeadLetterHandler, body: bytes, reason: str, name: str) -> None:
    """Store a dead letter; an outage of its store is waited out, never skipped."""
    while True:
        try:
            await keep(body, reason)
            return
        except Exception:
            log.exception("bus.dead_letter_failed", queue=name)
            await asyncio.sleep(RETRY_DELAY_SECONDS)


async def _deliver(
    handler: Handler,
    bodies: list[bytes],
    *,
    attempts: int,
    name: str,
    dead_letters: Sequence[DeadLetterHandler],
) -> None:
    """Hand a batch to `handler` through `isolate`, then keep each message that failed on its
    own in every dead-letter store (each retried on its own, so none gets it twice)."""
    dead = await isolate(handler, bodies, attempts=attempts, name=name)
    for index, reason in dead.items():
        for keep in dead_letters:
            await _keep_dead_letter(keep, bodies[index], reason, name)


def open_bus(settings: Settings) -> Bus:
    """RabbitMQ when MORNET_AMQP_URL is set, else the in-process bus."""
    attempts = settings.bus_retry_attempts
    if settings.amqp_url:
        return RabbitBus(settings.amqp_url, attempts=attempts)
    return InProcessBus(attempts=attempts)


class InProcessBus:
    """Queues inside the process. Nothing here survives a crash, so `publish` returns only
    once every consumer has handled the message: the caller acknowledges its source (the
    MQTT broker) after that, never before, and a crash makes the source deliver again."""

    def __init__(self, *, attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.attempts = attempts
        self._queues: dict[str, list[asyncio.Queue[tuple[bytes, asyncio.Future[None]]]]] = (
            defaultdict(list)
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._delivering: set[asyncio.Task[Any]] = set()
        self._closing = False

    async def publish(self, topic: str, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        handled = []
        for queue in self._queues.get(topic, []):
            done: asyncio.Future[None] = loop.create_future()
            await queue.put((body, done))
            handled.append(done)
        await asyncio.gather(*handled)

    async def consume(
        self,
        topic: str,
        queue: str,
        handler: Handler,
        *,
        dead_letter: DeadLetterHandler | None = None,
    ) -> None:
        inbox: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] = asyncio.Queue()
        self._queues[topic].append(inbox)
        self._tasks.append(
            asyncio.create_task(self._run(queue, inbox, handler, dead_letter), name=f"bus:{queue}")
        )

    async def _run(
        self,
        name: str,
        inbox: asyncio.Queue[tuple[bytes, asyncio.Future[None]]],
        handler: Handler,
        dead_letter: DeadLetterHandler | None,
    ) -> None:
        current = asyncio.current_task()
        assert current is not None
        while not self._closing:
            batch = [await inbox.get()]
            while len(batch) < MAX_BATCH and not inbox.empty():
                batch.append(inbox.get_nowait())
            self._delivering.add(current)
            try:
                await _deliver(
                    handler,
                    [body for body, _ in batch],
                    attempts=self.attempts,
                    name=name,
                    dead_letters=[dead_letter] if dead_letter is not None else [],
                )
            finally:
                self._delivering.discard(current)
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
        """Stop consuming. A batch being handled may finish first (up to
        `CLOSE_GRACE_SECONDS`): cut off mid-transaction, a handler's write could outlive it
        (SQLite keeps the lock of a connection that was abandoned, not closed)."""
        self._closing = True
        if self._delivering:
            await asyncio.wait(set(self._delivering), timeout=CLOSE_GRACE_SECONDS)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class RabbitBus:
    def __init__(
        self, url: str, *, prefetch: int = 2 * MAX_BATCH, attempts: int = DEFAULT_ATTEMPTS
    ) -> None:
        self.url = url
        self.prefetch = prefetch
        self.attempts = attempts
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

    async def consume(
        self,
        topic: str,
        queue: str,
        handler: Handler,
        *,
        dead_letter: DeadLetterHandler | None = None,
    ) -> None:
        import aio_pika

        await self._ensure()
        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # Dead letters of each queue wait in `<queue>.dead` for an operator, with the reason
        # in the `x-mornet-reason` header.
        dead_exchange = await channel.declare_exchange(
            DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead_queue = await channel.declare_queue(dead_letter_queue(queue), durable=True)
        await dead_queue.bind(dead_exchange, routing_key=queue)
        declared = await channel.declare_queue(queue, durable=True)
        await declared.bind(exchange, routing_key=topic)
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        await declared.consume(inbox.put)

        async def bury(body: bytes, reason: str) -> None:
            await dead_exchange.publish(
                aio_pika.Message(
                    body,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers={"x-mornet-reason": reason, "x-mornet-topic": topic},
                ),
                routing_key=queue,
            )

        dead_letters = [bury] if dead_letter is None else [bury, dead_letter]
        self._tasks.append(
            asyncio.create_task(self._run(queue, inbox, handler, dead_letters), name=f"bus:{queue}")
        )

    async def _run(
        self,
        name: str,
        inbox: asyncio.Queue[Any],
        handler: Handler,
        dead_letters: Sequence[DeadLetterHandler],
    ) -> None:
        while True:
            pending = [await inbox.get()]
            # Linger briefly so that a burst becomes one batch (one transaction downstream).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LINGER_SECONDS):
                    while len(pending) < MAX_BATCH:
                        pending.append(await inbox.get())
            await _deliver(
                handler,
                [m.body for m in pending],
                attempts=self.attempts,
                name=name,
                dead_letters=dead_letters,
            )
            # Acknowledged only after the handler committed (or the message was buried): a
            # crash redelivers.
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

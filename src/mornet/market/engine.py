"""The matching engine of one order book (a region and a resource): continuous limit orders,
price-time priority, partial fills at the resting order's price, self-trade prevention. Pure
and in memory; the service journals what it decides and rebuilds a book from the journal.

Prices are integer kopecks per unit and quantities integer thousandths of a unit, so nothing
here is ever rounded."""

from __future__ import annotations

import hashlib
from bisect import insort
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass
class Order:
    id: Any
    owner: Any
    side: Side
    price: int
    """Kopecks per unit."""
    remaining: int
    """Thousandths of a unit still open."""
    seq: int
    """Arrival in this book: earlier is first at a price."""


@dataclass(frozen=True)
class Fill:
    maker: Any
    """The resting order's id (its price is the trade's)."""
    maker_owner: Any
    taker: Any
    taker_owner: Any
    taker_side: Side
    price: int
    quantity: int


@dataclass
class _Side:
    """One side's price levels: a FIFO per price and the prices in priority order."""

    best_first: int
    """+1 for asks (lowest first), -1 for bids (highest first)."""
    levels: dict[int, deque[Order]] = field(default_factory=dict)
    keys: list[int] = field(default_factory=list)
    """Sort keys (price * best_first), ascending: the best price first."""

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = deque()
            insort(self.keys, order.price * self.best_first)
        level.append(order)

    def prices(self) -> Iterator[int]:
        return (key * self.best_first for key in list(self.keys))

    def drop_level(self, price: int) -> None:
        del self.levels[price]
        self.keys.remove(price * self.best_first)


@dataclass(frozen=True)
class Placement:
    fills: list[Fill]
    rested: bool
    """Whether what was left rests in the book. It does not when nothing was left, or when it
    would rest crossed against its owner's own orders (self-trade prevention: the rest is
    cancelled, so the book is never crossed)."""


class Book:
    def __init__(self) -> None:
        self.bids = _Side(best_first=-1)
        self.asks = _Side(best_first=1)
        self.orders: dict[Any, Order] = {}
        self.last_price: int | None = None

    def place(self, order: Order) -> Placement:
        """Match `order` against the other side, then rest what is left. An order never fills
        against its own owner's: those resting orders keep their place, matching goes on
        past them, and a rest that would cross them is cancelled instead of resting."""
        if order.remaining <= 0 or order.price <= 0:
            raise ValueError("an order needs a positive price and quantity")
        if order.id in self.orders:
            raise ValueError(f"order {order.id!r} is already in the book")
        other = self.asks if order.side == Side.BUY else self.bids
        fills: list[Fill] = []
        for price in other.prices():
            if order.remaining == 0:
                break
            crosses = price <= order.price if order.side == Side.BUY else price >= order.price
            if not crosses:
                break
            level = other.levels[price]
            kept: deque[Order] = deque()
            while level and order.remaining:
                maker = level.popleft()
                if maker.owner == order.owner:
                    kept.append(maker)  # self-trade prevention: skip, keep its priority
                    continue
                quantity = min(maker.remaining, order.remaining)
                maker.remaining -= quantity
                order.remaining -= quantity
                fills.append(
                    Fill(
                        maker=maker.id,
                        maker_owner=maker.owner,
                        taker=order.id,
                        taker_owner=order.owner,
                        taker_side=order.side,
                        price=price,
                        quantity=quantity,
                    )
                )
                self.last_price = price
                if maker.remaining:
                    kept.append(maker)
                else:
                    del self.orders[maker.id]
            kept.extend(level)
            if kept:
                other.levels[price] = kept
            else:
                other.drop_level(price)
        if not order.remaining:
            return Placement(fills, rested=False)
        best = self.best(Side.SELL if order.side == Side.BUY else Side.BUY)
        if best is not None and (
            best <= order.price if order.side == Side.BUY else best >= order.price
        ):
            return Placement(fills, rested=False)  # only its owner's orders are left to cross
        (self.bids if order.side == Side.BUY else self.asks).add(order)
        self.orders[order.id] = order
        return Placement(fills, rested=True)

    def cancel(self, order_id: Any) -> Order | None:
        """Take a resting order out; None when it is not resting (filled or unknown)."""
        order = self.orders.pop(order_id, None)
        if order is None:
            return None
        side = self.bids if order.side == Side.BUY else self.asks
        level = side.levels[order.price]
        level.remove(order)
        if not level:
            side.drop_level(order.price)
        return order

    def depth(self, side: Side) -> list[tuple[int, int]]:
        """(price, open quantity) per level, best first."""
        levels = self.bids if side == Side.BUY else self.asks
        return [(p, sum(o.remaining for o in levels.levels[p])) for p in levels.prices()]

    def best(self, side: Side) -> int | None:
        levels = self.bids if side == Side.BUY else self.asks
        return levels.keys[0] * levels.best_first if levels.keys else None

    def resting(self) -> list[Order]:
        """Every resting order, bids then asks, each in priority order."""
        return [
            order
            for levels in (self.bids, self.asks)
            for price in levels.prices()
            for order in levels.levels[price]
        ]

    def digest(self) -> str:
        """A hash of the resting orders in priority order: two books with the same digest
        would match any future order the same way."""
        text = "|".join(
            f"{o.id}:{o.owner}:{o.side}:{o.price}:{o.remaining}:{o.seq}" for o in self.resting()
        )
        return hashlib.sha256(text.encode()).hexdigest()

"""The matching engine against a small reference model of price-time priority, driven by a
hypothesis state machine: after every event the book is never crossed, every fill respects
priority and both limits, nobody trades with themself, and quantity is conserved."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mornet.market.engine import Book, Order, Side

OWNERS = ["ann", "bob", "cat"]


@dataclass
class Resting:
    id: int
    owner: str
    side: Side
    price: int
    remaining: int
    seq: int


class Reference:
    """The rules written the slow, obvious way."""

    def __init__(self) -> None:
        self.resting: list[Resting] = []

    def place(self, o: Resting) -> tuple[list[tuple[int, int, int]], bool]:
        def crosses(r: Resting) -> bool:
            return r.price <= o.price if o.side == Side.BUY else r.price >= o.price

        others = sorted(
            (r for r in self.resting if r.side != o.side and crosses(r) and r.owner != o.owner),
            key=lambda r: (r.price if o.side == Side.BUY else -r.price, r.seq),
        )
        fills = []
        for maker in others:
            if not o.remaining:
                break
            quantity = min(maker.remaining, o.remaining)
            maker.remaining -= quantity
            o.remaining -= quantity
            fills.append((maker.id, maker.price, quantity))
        self.resting = [r for r in self.resting if r.remaining]
        if o.remaining and not any(r.side != o.side and crosses(r) for r in self.resting):
            self.resting.append(o)
            return fills, True
        return fills, False

    def cancel(self, order_id: int) -> bool:
        before = len(self.resting)
        self.resting = [r for r in self.resting if r.id != order_id]
        return len(self.resting) < before


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = Book()
        self.model = Reference()
        self.ids = itertools.count(1)
        self.placed = 0
        self.traded = 0
        self.cancelled = 0
        self.dropped = 0

    @rule(
        owner=st.sampled_from(OWNERS),
        side=st.sampled_from(list(Side)),
        price=st.integers(1, 8),
        quantity=st.integers(1, 5),
    )
    def place(self, owner: str, side: Side, price: int, quantity: int) -> None:
        order_id = next(self.ids)
        placement = self.book.place(Order(order_id, owner, side, price, quantity, order_id))
        expected, rested = self.model.place(
            Resting(order_id, owner, side, price, quantity, order_id)
        )
        assert [(f.maker, f.price, f.quantity) for f in placement.fills] == expected
        assert placement.rested == rested
        for fill in placement.fills:
            assert fill.maker_owner != fill.taker_owner
            assert fill.price <= price if side == Side.BUY else fill.price >= price
        filled = sum(f.quantity for f in placement.fills)
        self.placed += quantity
        self.traded += 2 * filled  # both sides of each fill
        if not rested:
            self.dropped += quantity - filled

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        resting = [o.id for o in self.book.resting()]
        if not resting:
            return
        order_id = data.draw(st.sampled_from(resting))
        order = self.book.cancel(order_id)
        assert order is not None
        assert self.model.cancel(order_id)
        self.cancelled += order.remaining
        assert self.book.cancel(order_id) is None  # a second cancel finds nothing

    @invariant()
    def same_book_as_the_model(self) -> None:
        ours = sorted((o.id, o.remaining) for o in self.book.resting())
        assert ours == sorted((r.id, r.remaining) for r in self.model.resting)

    @invariant()
    def never_crossed(self) -> None:
        bid, ask = self.book.best(Side.BUY), self.book.best(Side.SELL)
        assert bid is None or ask is None or bid < ask

    @invariant()
    def quantity_is_conserved(self) -> None:
        resting = sum(o.remaining for o in self.book.resting())
        assert self.placed == resting + self.traded + self.cancelled + self.dropped


BookMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_the_engine_matches_the_reference_model = BookMachine.TestCase


def test_a_replay_gives_the_same_book() -> None:
    first, second = Book(), Book()
    orders = [
        ("ann", Side.SELL, 5, 3),
        ("bob", Side.SELL, 4, 2),
        ("cat", Side.BUY, 5, 4),
        ("ann", Side.BUY, 3, 2),
        ("bob", Side.BUY, 4, 1),
    ]
    for book in (first, second):
        for seq, (owner, side, price, quantity) in enumerate(orders, 1):
            book.place(Order(seq, owner, side, price, quantity, seq))
    assert first.digest() == second.digest()
    assert first.depth(Side.SELL) == [(5, 1)]  # bob's 2 at 4, then 2 of ann's 3 at 5
    second.cancel(4)
    assert first.digest() != second.digest()

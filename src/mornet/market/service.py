"""Market rules: prepaid units bought from the platform at the tariff and sold back at the
tariff less the spread, and limit orders matched household to household in an order book
per region and resource, with the funds each open order needs held in the wallet."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mornet.access import Actor
from mornet.chain import service as chain
from mornet.chain.contracts import MAX_BATCH
from mornet.chain.errors import ChainUnavailable
from mornet.chain.schemas import OperationKind
from mornet.changes import topics_of
from mornet.db import insert_objects, sessions_like, unit_of_work, utcnow
from mornet.errors import Conflict, NotFound, ValidationFailed
from mornet.households import service as households
from mornet.market import repository
from mornet.market.engine import Book, Fill, Order
from mornet.market.engine import Side as Side  # part of this API: an order's side
from mornet.market.models import MarketBook, MarketDeal, MarketOrder, MarketTrade
from mornet.pagination import PageRequest
from mornet.resources import Resource
from mornet.tariffs import service as tariffs
from mornet.treasury import service as treasury
from mornet.wallets import service as wallets

MARKET_RESERVE = chain.keyless_address("mornet:market-reserve")
"""Where purchases pay and sell-backs are paid from (a hash with no key: only the platform's
minter moves it, through `transfer_batch`)."""
SPREAD = "market_spread"
KOPECK = Decimal("0.01")
UNIT_BASE = 10**15
"""Base units (10^-18) of a resource token per thousandth of a unit."""
GCC_BASE = 10**13
"""GCC base units per kopeck-thousandth (a price in kopecks times a quantity in thousandths)."""
RESERVE_LOCK = ("*", "*")
"""The book row that stands for the market reserve: sell-backs lock it to pay one at a time."""


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self) -> None:
        super().__init__("no such order")


class KeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this idempotency key was used for another request")


class NoHouseholdInRegion(ValidationFailed):
    code = "no_household_in_region"


class PriceAboveTariff(ValidationFailed):
    code = "price_above_tariff"


class ReserveShort(ValidationFailed):
    code = "market_reserve_short"


class OrderNotOpen(Conflict):
    code = "order_not_open"


def amount(value: int, places: int) -> Decimal:
    """An integer count of 10^-places (kopecks: 2, thousandths of a unit: 3) as a Decimal."""
    return Decimal(value).scaleb(-places)


def _units(quantity: Decimal) -> int:
    """Thousandths of a unit."""
    return int(quantity.scaleb(3))


def _kopecks(price: Decimal) -> int:
    return int(price.scaleb(2))


def _connected(handle: chain.ChainHandle | None) -> chain.ChainHandle:
    if handle is None:
        raise ChainUnavailable()
    return handle


async def _region_of_own(session: AsyncSession, actor: Actor, household_id: uuid.UUID) -> str:
    """The region of one of the caller's own households (anyone else's is a 404)."""
    household = await households.get_household(session, actor=actor, household_id=household_id)
    if household.owner_id != actor.id:  # an operator may read it, but buys with their own wallet
        raise households.HouseholdNotFound()
    return household.region_code


# Purchases from the platform and sell-backs to it.


class DealAction(Protocol):
    """`purchase` or `sell_back`: routes, pages and GraphQL pass either one."""

    async def __call__(
        self,
        session: AsyncSession,
        handle: chain.ChainHandle | None,
        *,
        actor: Actor,
        household_id: uuid.UUID,
        resource: Resource,
        quantity: Decimal,
        idempotency_key: str,
    ) -> tuple[MarketDeal, bool]: ...


async def purchase(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    resource: Resource,
    quantity: Decimal,
    idempotency_key: str,
) -> tuple[MarketDeal, bool]:
    """Buy `quantity` units at the tariff of the household's region in force now: that much
    GCC (rounded half-up to the kopeck) moves to the market reserve and the units are minted
    to the buyer, in one transaction. Short GCC is a 422 with nothing moved."""
    return await _deal(
        session, handle, actor, "purchase", household_id, resource, quantity, idempotency_key
    )


async def sell_back(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    household_id: uuid.UUID,
    resource: Resource,
    quantity: Decimal,
    idempotency_key: str,
) -> tuple[MarketDeal, bool]:
    """Sell units back at the tariff less the spread: the units are burned and the GCC paid
    from the market reserve; a reserve that cannot pay is a 422 with nothing moved."""
    return await _deal(
        session, handle, actor, "sell_back", household_id, resource, quantity, idempotency_key
    )


async def _deal(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    actor: Actor,
    kind: str,
    household_id: uuid.UUID,
    resource: Resource,
    quantity: Decimal,
    key: str,
) -> tuple[MarketDeal, bool]:
    live = _connected(handle)
    region = await _region_of_own(session, actor, household_id)
    wallet = await wallets.lock_wallet(session, actor.id)  # orders this user's moves
    existing = await repository.deal_by_key(session, actor.id, key)
    if existing is not None:
        same = (existing.kind, existing.household_id, existing.resource, existing.quantity) == (
            kind,
            household_id,
            resource.value,
            quantity,
        )
        if not same:
            raise KeyReused()
        return existing, False
    quote = await tariffs.price_at(session, region_code=region, resource=resource, at=utcnow())
    spread = Decimal(0)
    if kind == "purchase":
        amount = (quantity * quote.price).quantize(KOPECK, rounding=ROUND_HALF_UP)
        if await wallets.available(session, live, wallet, "GCC") < chain.to_base_units(amount):
            raise wallets.InsufficientBalance(f"not enough GCC: {amount} GCC is needed")
    else:
        spread = await treasury.parameter_value(session, SPREAD)
        amount = (quantity * quote.price * (1 - spread)).quantize(KOPECK, rounding=ROUND_HALF_UP)
        if await wallets.available(session, live, wallet, resource.value) < chain.to_base_units(
            quantity
        ):
            raise wallets.InsufficientBalance(f"not enough {resource.value} to sell back")
        await repository.lock_book(session, *RESERVE_LOCK)
        reserve = await live.balance_of("GCC", MARKET_RESERVE) - await chain.pending_debits(
            session, MARKET_RESERVE, "GCC"
        )
        if reserve < chain.to_base_units(amount):
            raise ReserveShort(
                f"the market reserve cannot pay {amount} GCC now; try a smaller quantity later"
            )
    deal = MarketDeal(
        id=uuid.uuid4(),
        user_id=actor.id,
        household_id=household_id,
        kind=kind,
        resource=resource.value,
        quantity=quantity,
        tariff=quote.price,
        spread=spread,
        amount_gcc=amount,
        tariff_id=quote.id,
        idempotency_key=key,
        created_at=utcnow(),
    )
    gcc = chain.to_base_units(amount)
    units = chain.to_base_units(quantity)
    if kind == "purchase":
        moves = [
            ("GCC", OperationKind.TRANSFER, chain.Move(gcc, wallet.address, MARKET_RESERVE)),
            (resource.value, OperationKind.MINT, chain.Move(units, receiver=wallet.address)),
        ]
    else:
        moves = [
            (resource.value, OperationKind.BURN, chain.Move(units, sender=wallet.address)),
            ("GCC", OperationKind.TRANSFER, chain.Move(gcc, MARKET_RESERVE, wallet.address)),
        ]
    keys = []
    for token, operation_kind, move in moves:
        if move.amount == 0:
            continue
        operation_key = f"market:deal:{deal.id}:{token}"
        await chain.request(
            session,
            live,
            token=token,
            kind=operation_kind,
            moves=[move],
            idempotency_key=operation_key,
            requested_by=actor.id,
        )
        keys.append(operation_key)
    deal.operation_keys = keys
    session.add(deal)
    await session.flush()
    return deal, True


async def sweep_reserve(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    amount: Decimal,
    idempotency_key: str,
    actor_id: uuid.UUID,
) -> tuple[str, bool]:
    """Move `amount` GCC of the market reserve to the treasury's Safe (what sell-backs will
    not need); the Safe tops the reserve up by a transfer proposal. Returns (the chain
    operation's idempotency key, created)."""
    live = _connected(handle)
    safe = await treasury.safe_address(session, live)
    key = f"market:sweep:{idempotency_key}"
    if (existing := await chain.operation_for_key(session, key)) is not None:
        return existing.idempotency_key, False
    await repository.lock_book(session, *RESERVE_LOCK)
    units = chain.to_base_units(amount)
    reserve = await live.balance_of("GCC", MARKET_RESERVE) - await chain.pending_debits(
        session, MARKET_RESERVE, "GCC"
    )
    if units > reserve:
        raise ReserveShort(
            f"the market reserve holds {chain.from_base_units(max(reserve, 0))} GCC to sweep"
        )
    await chain.request(
        session,
        live,
        token="GCC",
        kind=OperationKind.TRANSFER,
        moves=[chain.Move(units, MARKET_RESERVE, safe)],
        idempotency_key=key,
        requested_by=actor_id,
    )
    return key, True


async def deals_of(
    session: AsyncSession, actor: Actor, page: PageRequest
) -> tuple[Sequence[MarketDeal], int]:
    return await repository.deals_page(session, actor.id, page)


# The order book.


def need(side: Side | str, price: int, remaining: int) -> tuple[str | None, int]:
    """What an open order holds: a sell its units, a buy the GCC at its limit price."""
    if Side(side) == Side.SELL:
        return None, remaining * UNIT_BASE
    return "GCC", price * remaining * GCC_BASE


def hold_reference(order_id: uuid.UUID) -> str:
    return f"market-order:{order_id}"


@dataclass(frozen=True)
class Placed:
    order: MarketOrder
    trades: list[MarketTrade]
    created: bool


@dataclass(frozen=True)
class _Place:
    user_id: uuid.UUID
    side: Side
    price: int
    quantity: int
    idempotency_key: str


@dataclass(frozen=True)
class _Cancel:
    user_id: uuid.UUID
    order_id: uuid.UUID


_Command = _Place | _Cancel
_Outcome = Placed | MarketOrder | Exception


async def place_order(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    *,
    actor: Actor,
    region: str,
    resource: Resource,
    side: Side,
    price: Decimal,
    quantity: Decimal,
    idempotency_key: str,
) -> Placed:
    """Place a limit order: hold what it needs, match it (price-time priority, at the resting
    orders' prices, never against the owner's own), journal the order and its trades, and
    hold what its fills move until the batcher puts them on chain (`batch_trades`).

    The order joins its book's desk (`_Desk`), which matches the orders that arrive together
    in one transaction of its own, with the book's row locked: one writer per book. The
    caller's transaction is committed before the order waits (it holds no connection
    meanwhile, and reads after this see what the desk committed)."""
    live = _connected(handle)
    await tariffs.known_region(session, region)  # an unknown region is a 404
    owned = await households.regions_of_owner(session, actor.id)
    if region not in owned:
        raise NoHouseholdInRegion(f"you have no household in {region}: orders there are refused")
    quote = await tariffs.price_at(session, region_code=region, resource=resource, at=utcnow())
    if price > quote.price:
        raise PriceAboveTariff(
            f"the price is at most the tariff, {quote.price} RUB per {resource.unit}: "
            "the platform sells at it"
        )
    command = _Place(actor.id, side, _kopecks(price), _units(quantity), idempotency_key)
    await session.commit()
    outcome = await _desk(session, region, resource).submit(live, command)
    assert isinstance(outcome, Placed)
    return outcome


async def cancel_order(session: AsyncSession, *, actor: Actor, order_id: uuid.UUID) -> MarketOrder:
    """Cancel what is left of one's own open order and release its hold. A cancel racing a
    fill goes through the same desk: whichever comes first wins, the other sees the result."""
    found = await repository.order(session, order_id)
    if found is None or found.user_id != actor.id:
        raise OrderNotFound()
    desk = _desk(session, found.region, Resource(found.resource))
    await session.commit()  # as `place_order` does
    outcome = await desk.submit(None, _Cancel(actor.id, order_id))
    assert isinstance(outcome, MarketOrder)
    return outcome


_DESKS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], _Desk]] = weakref.WeakKeyDictionary()
DESK_BATCH = 64
"""The most orders and cancels one of a book's transactions takes."""


def _desk(session: AsyncSession, region: str, resource: Resource) -> _Desk:
    """This process's desk for the book, on the session's database."""
    engine = session.get_bind()
    desks = _DESKS.setdefault(engine, {})
    key = (region, resource.value)
    if key not in desks:
        desks[key] = _Desk(sessions_like(session), region, resource)
    return desks[key]


class _Desk:
    """One book's writer in this process. Orders and cancels queue here; while one batch is in
    its transaction the next ones gather, and each batch is matched and journalled in one
    transaction (a dozen statements however many orders: the book's lock is held once per
    batch, not per order). The matched book stays in memory between batches, trusted while
    the book row's `last_seq` is the one it was left at (another process's write moves it,
    and the book is read again). A batch that fails as a whole is retried one command at a
    time, so one command's failure is its own."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], region: str, resource: Resource
    ) -> None:
        self.sessions = sessions
        self.region = region
        self.resource = resource
        self.queue: list[tuple[_Command, asyncio.Future[_Outcome]]] = []
        self.handle: chain.ChainHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.book: Book | None = None
        self.seq = -1

    async def submit(self, handle: chain.ChainHandle | None, command: _Command) -> _Outcome:
        if handle is not None:
            self.handle = handle
        future: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self.queue.append((command, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        outcome = await future
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _drain(self) -> None:
        while self.queue:
            batch, self.queue = self.queue[:DESK_BATCH], self.queue[DESK_BATCH:]
            try:
                outcomes = await self._run([command for command, _ in batch])
            except Exception as exc:
                self.book = None  # matched in memory, not committed: read it again
                if len(batch) == 1:
                    outcomes = [exc]
                else:
                    outcomes = []
                    for command, _ in batch:
                        try:
                            [outcome] = await self._run([command])
                        except Exception as alone:
                            self.book = None
                            outcome = alone
                        outcomes.append(outcome)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _run(self, commands: list[_Command]) -> list[_Outcome]:
        async with unit_of_work(self.sessions) as session:
            book = await repository.lock_book(session, self.region, self.resource.value)
            if self.book is None or self.seq != book.last_seq:
                open_orders = await repository.open_orders(
                    session, self.region, self.resource.value
                )
                self.book = _book_of(open_orders)
            outcomes = await _match(session, self.handle, book, self.book, commands)
        self.seq = book.last_seq
        return outcomes


async def _match(
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    book: MarketBook,
    engine: Book,
    commands: Sequence[_Command],
) -> list[_Outcome]:
    """Match `commands` in arrival order against `engine` (the book's resting orders) and
    write what they did: a few statements for the whole batch."""
    places = [c for c in commands if isinstance(c, _Place)]
    cancels = [c for c in commands if isinstance(c, _Cancel)]
    resource = book.resource
    existing = await repository.orders_by_keys(
        session, {(c.user_id, c.idempotency_key) for c in places}
    )
    owners = {c.user_id for c in places}
    locked = await wallets.lock_wallets(session, owners)
    spendable: dict[tuple[str, str], int] = {}
    if places:
        spendable = await wallets.available_of(
            session, _connected(handle), list(locked.values()), {"GCC", resource}
        )
    cancelled = await repository.orders_by_ids(session, {c.order_id for c in cancels})
    now = utcnow()
    outcomes: list[_Outcome] = []
    orders: list[MarketOrder] = []
    trades: list[MarketTrade] = []
    holds: list[wallets.NewHold] = []
    held: dict[str, int] = {}  # hold reference → what it keeps now
    makers: dict[uuid.UUID, dict[str, Any]] = {}  # order id → its row's new values
    for command in commands:
        if isinstance(command, _Cancel):
            outcomes.append(_cancel(command, cancelled, engine, book, makers, held, now))
            continue
        key = (command.user_id, command.idempotency_key)
        if (found := existing.get(key)) is not None:
            asked = (book.region, resource, command.side.value, command.price, command.quantity)
            ok = asked == (found.region, found.resource, found.side, found.price, found.quantity)
            outcomes.append(Placed(found, [], created=False) if ok else KeyReused())
            continue
        wallet = locked.get(command.user_id)
        if wallet is None:
            outcomes.append(NotFound("this user has no wallet yet", code="wallet_not_found"))
            continue
        token, units = need(command.side, command.price, command.quantity)
        token = token or resource
        left = spendable.get((wallet.address, token), 0)
        if units > left:
            outcomes.append(wallets.InsufficientToHold.of(token, left, units))
            continue
        spendable[(wallet.address, token)] = left - units
        book.last_seq += 1
        order = MarketOrder(
            id=uuid.uuid4(),
            user_id=command.user_id,
            region=book.region,
            resource=resource,
            side=command.side.value,
            price=command.price,
            quantity=command.quantity,
            remaining=command.quantity,
            status="open",
            seq=book.last_seq,
            idempotency_key=command.idempotency_key,
            created_at=now,
            updated_at=now,
        )
        placement = engine.place(
            Order(order.id, order.user_id, command.side, order.price, order.remaining, order.seq)
        )
        order.remaining -= sum(f.quantity for f in placement.fills)
        # Not resting: filled, or its rest cancelled rather than crossing its owner's own orders.
        order.status = "open" if placement.rested else "cancelled" if order.remaining else "filled"
        made = [_trade(order, fill, now) for fill in placement.fills]
        for fill, trade in zip(placement.fills, made, strict=True):
            maker = engine.orders.get(fill.maker)
            remaining = maker.remaining if maker is not None else 0
            makers[fill.maker] = {
                "id": fill.maker,
                "remaining": remaining,
                "status": "open" if remaining else "filled",
                "updated_at": now,
            }
            maker_side = Side.SELL if command.side == Side.BUY else Side.BUY
            held[hold_reference(fill.maker)] = need(maker_side, fill.price, remaining)[1]
            holds.append(
                wallets.NewHold(
                    trade.seller_id,
                    resource,
                    fill.quantity * UNIT_BASE,
                    trade_hold(trade.id, resource),
                )
            )
            holds.append(
                wallets.NewHold(
                    trade.buyer_id,
                    "GCC",
                    fill.price * fill.quantity * GCC_BASE,
                    trade_hold(trade.id, "GCC"),
                )
            )
        if placement.fills:
            book.last_price = placement.fills[-1].price
        rest = need(command.side, order.price, order.remaining)[1] if placement.rested else 0
        holds.append(wallets.NewHold(order.user_id, token, rest, hold_reference(order.id)))
        existing[key] = order  # the same key again in this batch is a retry
        orders.append(order)
        trades += made
        outcomes.append(Placed(order, made, created=True))
    # Rows first (a maker may be an order of this batch), then what changed in them.
    await insert_objects(session, [*orders, *trades])  # orders first: trades refer to them
    await wallets.write_holds(session, holds, held)
    await repository.set_remaining(session, list(makers.values()))
    await session.flush()
    return outcomes


def _trade(taker: MarketOrder, fill: Fill, now: datetime) -> MarketTrade:
    taking, making = (taker.id, taker.user_id), (fill.maker, fill.maker_owner)
    (buy_order, buyer), (sell_order, seller) = (
        (taking, making) if taker.side == Side.BUY else (making, taking)
    )
    return MarketTrade(
        id=uuid.uuid4(),
        region=taker.region,
        resource=taker.resource,
        seq=taker.seq,
        price=fill.price,
        quantity=fill.quantity,
        buy_order_id=buy_order,
        sell_order_id=sell_order,
        buyer_id=buyer,
        seller_id=seller,
        taker_side=taker.side,
        operation_keys=[],
        created_at=now,
    )


def _cancel(
    command: _Cancel,
    found: dict[uuid.UUID, MarketOrder],
    engine: Book,
    book: MarketBook,
    makers: dict[uuid.UUID, dict[str, Any]],
    held: dict[str, int],
    now: datetime,
) -> _Outcome:
    order = found.get(command.order_id)
    if order is None or order.user_id != command.user_id:
        return OrderNotFound()
    filled_here = makers.get(order.id)
    if engine.cancel(order.id) is None:
        status = "filled" if filled_here and not filled_here["remaining"] else order.status
        return OrderNotOpen(f"the order is {status}: nothing is left to cancel")
    if filled_here is not None:  # partly filled earlier in this batch
        order.remaining = filled_here["remaining"]
        del makers[order.id]
    book.last_seq += 1
    order.status = "cancelled"
    order.cancelled_seq = book.last_seq
    order.updated_at = now
    held[hold_reference(order.id)] = 0
    return order


def _book_of(orders: Iterable[MarketOrder]) -> Book:
    book = Book()
    for o in orders:
        book.place(Order(o.id, o.user_id, Side(o.side), o.price, o.remaining, o.seq))
    return book


def trade_hold(trade_id: uuid.UUID, token: str) -> str:
    return f"market-trade:{trade_id}:{token}"


async def batch_trades(
    session: AsyncSession, handle: chain.ChainHandle | None, *, limit: int = 1024
) -> int:
    """Put the tokens of trades not on chain yet into transfer operations — one per token per
    256 moves, across every book — and release the trades' holds in the same transaction (the
    operations' pending debits take their place). Returns how many trades it batched."""
    live = _connected(handle)
    waiting = await repository.unbatched_trades(session, limit)
    if not waiting:
        return 0
    batch_id = uuid.uuid4()
    addresses = await wallets.addresses_of(
        session, {t.buyer_id for t in waiting} | {t.seller_id for t in waiting}
    )
    moves: dict[str, list[chain.Move]] = defaultdict(list)
    for trade in waiting:
        seller, buyer = addresses[trade.seller_id], addresses[trade.buyer_id]
        moves[trade.resource].append(chain.Move(trade.quantity * UNIT_BASE, seller, buyer))
        moves["GCC"].append(chain.Move(trade.price * trade.quantity * GCC_BASE, buyer, seller))
    keys = []
    for token, token_moves in sorted(moves.items()):
        for first in range(0, len(token_moves), MAX_BATCH):
            key = f"market:trades:{batch_id}:{token}:{first // MAX_BATCH}"
            await chain.request(
                session,
                live,
                token=token,
                kind=OperationKind.TRANSFER,
                moves=token_moves[first : first + MAX_BATCH],
                idempotency_key=key,
            )
            keys.append(key)
    await repository.set_batches(
        session,
        [
            {
                "id": trade.id,
                "batch_id": batch_id,
                "operation_keys": [k for k in keys if f":{trade.resource}:" in k or ":GCC:" in k],
            }
            for trade in waiting
        ],
    )
    released = {trade_hold(t.id, token): 0 for t in waiting for token in (t.resource, "GCC")}
    await wallets.write_holds(session, [], released)
    return len(waiting)


async def orders_of(
    session: AsyncSession, actor: Actor, page: PageRequest
) -> tuple[Sequence[MarketOrder], int, dict[uuid.UUID, list[MarketTrade]]]:
    """The caller's orders, newest first, with the trades that filled each."""
    found, total = await repository.orders_page(session, actor.id, page)
    return found, total, await fills_of(session, [o.id for o in found])


async def fills_of(
    session: AsyncSession, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MarketTrade]]:
    """The trades that filled each order (either side)."""
    fills: dict[uuid.UUID, list[MarketTrade]] = defaultdict(list)
    for trade in await repository.trades_of_orders(session, order_ids):
        fills[trade.buy_order_id].append(trade)
        fills[trade.sell_order_id].append(trade)
    return fills


@dataclass(frozen=True)
class Depth:
    bids: list[tuple[int, int, int]]
    """(price, quantity, orders), best first."""
    asks: list[tuple[int, int, int]]
    last_price: int | None
    tariff: Decimal | None


async def depth(session: AsyncSession, region: str, resource: Resource) -> Depth:
    await tariffs.get_region(session, region)
    levels = await repository.depth(session, region, resource.value)
    bids = sorted(((p, q, n) for s, p, q, n in levels if s == Side.BUY), reverse=True)
    asks = sorted((p, q, n) for s, p, q, n in levels if s == Side.SELL)
    row = await repository.book(session, region, resource.value)
    try:
        tariff: Decimal | None = (
            await tariffs.price_at(session, region_code=region, resource=resource, at=utcnow())
        ).price
    except NotFound:
        tariff = None
    return Depth(bids, asks, row.last_price if row else None, tariff)


async def trades(
    session: AsyncSession, region: str, resource: Resource, page: PageRequest
) -> tuple[Sequence[MarketTrade], int]:
    await tariffs.get_region(session, region)
    return await repository.trades_page(session, region, resource.value, page)


TRADE_TOPICS = topics_of(MarketTrade)
"""What `trade_totals` and `traded_by_hour` count changes only when these move."""


async def trade_totals(session: AsyncSession) -> tuple[int, Decimal]:
    """(trades, GCC traded) over every book."""
    count, volume = await repository.trade_totals(session)
    return count, amount(volume, 5)


async def book_digests(session: AsyncSession, region: str, resource: Resource) -> tuple[str, str]:
    """The book as its open orders stand, and as a replay of its journal (every order placed
    and cancelled in arrival order) rebuilds it: equal when the journal is whole."""
    live = _book_of(await repository.open_orders(session, region, resource.value))
    replayed = Book()
    events: list[tuple[int, int, MarketOrder]] = []
    for o in await repository.journal(session, region, resource.value):
        events.append((o.seq, 0, o))
        if o.cancelled_seq is not None:
            events.append((o.cancelled_seq, 1, o))
    for _, is_cancel, o in sorted(events, key=lambda e: (e[0], e[1])):
        if is_cancel:
            replayed.cancel(o.id)
        else:
            replayed.place(Order(o.id, o.user_id, Side(o.side), o.price, o.quantity, o.seq))
    return live.digest(), replayed.digest()


async def traded_by_hour(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[datetime, Decimal]:
    """GCC traded on every book per UTC hour in [start, end) (analytics)."""
    volumes: dict[datetime, int] = defaultdict(int)
    for at, volume in await repository.trades_between(session, start, end):
        volumes[at.replace(minute=0, second=0, microsecond=0)] += volume
    return {hour: amount(volume, 5) for hour, volume in volumes.items()}

"""REST routes of the market: purchases and sell-backs, orders, books and trades."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain import service as chain
from mornet.chain.dependencies import ChainDep
from mornet.dependencies import SessionDep
from mornet.errors import answers
from mornet.identity.auth import AdminUser, CurrentUser
from mornet.market import service
from mornet.market.models import MarketDeal, MarketOrder, MarketTrade
from mornet.market.schemas import (
    BookOut,
    DealOut,
    DealRequest,
    FillOut,
    LevelOut,
    OrderOut,
    OrderRequest,
    ReserveSweep,
    ReserveSweepOut,
    TradeOut,
)
from mornet.market.service import amount
from mornet.pagination import Page, PageParams, page_of
from mornet.resources import Resource
from mornet.tariffs.schemas import RegionCode

router = APIRouter(prefix="/api", tags=["market"])


async def deals_out(session: AsyncSession, deals: Sequence[MarketDeal]) -> list[DealOut]:
    statuses = await chain.statuses_of(session, [k for d in deals for k in d.operation_keys])

    return [
        DealOut.model_validate(
            {
                "id": d.id,
                "kind": d.kind,
                "household_id": d.household_id,
                "resource": d.resource,
                "quantity": d.quantity,
                "tariff": d.tariff,
                "spread": d.spread,
                "amount_gcc": d.amount_gcc,
                "status": chain.group_status(statuses, d.operation_keys),
                "created_at": d.created_at,
            }
        )
        for d in deals
    ]


def order_out(order: MarketOrder, fills: Sequence[MarketTrade]) -> OrderOut:
    return OrderOut.model_validate(
        {
            "id": order.id,
            "region": order.region,
            "resource": order.resource,
            "side": order.side,
            "price": amount(order.price, 2),
            "quantity": amount(order.quantity, 3),
            "remaining": amount(order.remaining, 3),
            "status": order.status,
            "fills": [
                FillOut(
                    trade_id=t.id,
                    price=amount(t.price, 2),
                    quantity=amount(t.quantity, 3),
                    created_at=t.created_at,
                )
                for t in fills
            ],
            "created_at": order.created_at,
        }
    )


@router.post(
    "/market/purchases", status_code=status.HTTP_201_CREATED, responses=answers(404, 409, 503)
)
async def purchase(
    body: DealRequest, user: CurrentUser, session: SessionDep, handle: ChainDep, response: Response
) -> DealOut:
    """Buy prepaid units from the platform at the tariff of the household's region (the GCC
    goes to the market reserve, the units are minted). The same key answers 200 with the same
    purchase."""
    return await _deal(service.purchase, body, user, session, handle, response)


@router.post(
    "/market/sell-backs", status_code=status.HTTP_201_CREATED, responses=answers(404, 409, 503)
)
async def sell_back(
    body: DealRequest, user: CurrentUser, session: SessionDep, handle: ChainDep, response: Response
) -> DealOut:
    """Sell prepaid units back to the platform at the tariff less the spread (the units are
    burned, the GCC paid from the market reserve)."""
    return await _deal(service.sell_back, body, user, session, handle, response)


async def _deal(
    act: service.DealAction,
    body: DealRequest,
    user: CurrentUser,
    session: AsyncSession,
    handle: chain.ChainHandle | None,
    response: Response,
) -> DealOut:
    """A purchase or a sell-back; the same key answers 200 with the same deal."""
    deal, created = await act(
        session,
        handle,
        actor=user,
        household_id=body.household_id,
        resource=body.resource,
        quantity=body.quantity,
        idempotency_key=body.idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    [out] = await deals_out(session, [deal])
    return out


@router.get("/market/deals")
async def my_deals(user: CurrentUser, session: SessionDep, page: PageParams) -> Page[DealOut]:
    found, total = await service.deals_of(session, user, page)
    return page_of(await deals_out(session, found), total, page)


@router.post(
    "/market/orders", status_code=status.HTTP_201_CREATED, responses=answers(404, 409, 503)
)
async def place_order(
    body: OrderRequest, user: CurrentUser, session: SessionDep, handle: ChainDep, response: Response
) -> OrderOut:
    """Place a limit order (it holds its units, or its GCC at the limit price, until filled or
    cancelled); what crosses the book fills at once, at the resting orders' prices."""
    placed = await service.place_order(
        session,
        handle,
        actor=user,
        region=body.region,
        resource=body.resource,
        side=body.side,
        price=body.price,
        quantity=body.quantity,
        idempotency_key=body.idempotency_key,
    )
    if not placed.created:
        response.status_code = status.HTTP_200_OK
        fills = await service.fills_of(session, [placed.order.id])
        return order_out(placed.order, fills[placed.order.id])
    return order_out(placed.order, placed.trades)


@router.delete("/market/orders/{order_id}", responses=answers(404, 409))
async def cancel_order(order_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> OrderOut:
    """Cancel what is left of an open order; its hold is released."""
    order = await service.cancel_order(session, actor=user, order_id=order_id)
    fills = await service.fills_of(session, [order.id])
    return order_out(order, fills[order.id])


@router.get("/market/orders")
async def my_orders(user: CurrentUser, session: SessionDep, page: PageParams) -> Page[OrderOut]:
    found, total, fills = await service.orders_of(session, user, page)
    return page_of([order_out(o, fills[o.id]) for o in found], total, page)


async def book_out(session: AsyncSession, region: str, resource: Resource) -> BookOut:
    depth = await service.depth(session, region, resource)

    def levels(rows: list[tuple[int, int, int]]) -> list[LevelOut]:
        return [LevelOut(price=amount(p, 2), quantity=amount(q, 3), orders=n) for p, q, n in rows]

    return BookOut(
        region=region,
        resource=resource,
        tariff=depth.tariff,
        bids=levels(depth.bids),
        asks=levels(depth.asks),
        best_bid=amount(depth.bids[0][0], 2) if depth.bids else None,
        best_ask=amount(depth.asks[0][0], 2) if depth.asks else None,
        last_price=amount(depth.last_price, 2) if depth.last_price else None,
    )


@router.get("/market/books/{region}/{resource}", responses=answers(404))
async def book(region: RegionCode, resource: Resource, session: SessionDep) -> BookOut:
    """Depth per price level (public), best bid and ask, the last trade's price, and the
    tariff, which is every price's ceiling."""
    return await book_out(session, region, resource)


@router.get("/market/trades", responses=answers(404))
async def trades(
    region: RegionCode, resource: Resource, session: SessionDep, page: PageParams
) -> Page[TradeOut]:
    """The book's trades, newest first (public: who traded is never shown)."""
    found, total = await service.trades(session, region, resource, page)
    items = [
        TradeOut.model_validate(
            {
                "id": t.id,
                "region": t.region,
                "resource": t.resource,
                "price": amount(t.price, 2),
                "quantity": amount(t.quantity, 3),
                "taker_side": t.taker_side,
                "created_at": t.created_at,
            }
        )
        for t in found
    ]
    return page_of(items, total, page)


@router.post(
    "/admin/market/reserve/sweep",
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(404, 409, 503),
)
async def sweep_reserve(
    body: ReserveSweep, admin: AdminUser, session: SessionDep, handle: ChainDep
) -> ReserveSweepOut:
    """Move GCC the market reserve does not need to the treasury's Safe (the same key again
    answers with the same move). The Safe tops the reserve up by a transfer proposal."""
    key, _ = await service.sweep_reserve(
        session,
        handle,
        amount=body.amount,
        idempotency_key=body.idempotency_key,
        actor_id=admin.id,
    )
    statuses = await chain.statuses_of(session, [key])
    return ReserveSweepOut(operation_key=key, status=chain.group_status(statuses, [key]))

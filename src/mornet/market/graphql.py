"""GraphQL queries and mutations of the market: the REST shapes, served as GraphQL types."""

from __future__ import annotations

import uuid
from decimal import Decimal

import strawberry

from mornet.chain.dependencies import chain_of
from mornet.graphql import Info, validated
from mornet.market import service
from mornet.market.endpoints import book_out, deals_out, order_out
from mornet.market.schemas import (
    BookOut,
    DealOut,
    DealRequest,
    FillOut,
    LevelOut,
    OrderOut,
    OrderRequest,
)
from mornet.pagination import MAX_LIMIT, PageRequest
from mornet.resources import Resource


@strawberry.experimental.pydantic.type(model=FillOut, all_fields=True, name="MarketFill")
class FillType:
    """A trade that filled (part of) an order."""


@strawberry.experimental.pydantic.type(model=OrderOut, all_fields=True, name="MarketOrder")
class OrderType:
    """A limit order with its fills."""


@strawberry.experimental.pydantic.type(model=LevelOut, all_fields=True, name="MarketLevel")
class LevelType:
    """Open quantity at one price."""


@strawberry.experimental.pydantic.type(model=BookOut, all_fields=True, name="MarketBook")
class BookType:
    """A region's order book for one resource: depth, best prices, last price, tariff."""


@strawberry.experimental.pydantic.type(model=DealOut, all_fields=True, name="MarketDeal")
class DealType:
    """A purchase from the platform or a sell-back to it."""


@strawberry.type
class MarketQuery:
    @strawberry.field(description="A region's order book for one resource (public).")
    async def book(self, info: Info, region: str, resource: Resource) -> BookType:
        return BookType.from_pydantic(await book_out(info.context.session, region, resource))

    @strawberry.field(description="The caller's orders, newest first, with their fills.")
    async def my_orders(self, info: Info) -> list[OrderType]:
        user = await info.context.user()
        found, _, fills = await service.orders_of(
            info.context.session, user, PageRequest(limit=MAX_LIMIT)
        )
        return [OrderType.from_pydantic(order_out(o, fills[o.id])) for o in found]


@strawberry.type
class MarketMutation:
    @strawberry.mutation(
        description="Place a limit order; it holds its units (sell) or GCC at the limit "
        "(buy) until filled or cancelled. A retry with the same idempotencyKey returns it."
    )
    async def place_order(
        self,
        info: Info,
        region: str,
        resource: Resource,
        side: service.Side,
        price: Decimal,
        quantity: Decimal,
        idempotency_key: str,
    ) -> OrderType:
        user = await info.context.user()
        body = validated(
            OrderRequest,
            region=region,
            resource=resource,
            side=side,
            price=price,
            quantity=quantity,
            idempotency_key=idempotency_key,
        )
        placed = await service.place_order(
            info.context.session,
            chain_of(info.context.platform),
            actor=user,
            region=body.region,
            resource=body.resource,
            side=body.side,
            price=body.price,
            quantity=body.quantity,
            idempotency_key=body.idempotency_key,
        )
        fills = await service.fills_of(info.context.session, [placed.order.id])
        return OrderType.from_pydantic(order_out(placed.order, fills[placed.order.id]))

    @strawberry.mutation(description="Cancel what is left of one of your open orders.")
    async def cancel_order(self, info: Info, order_id: uuid.UUID) -> OrderType:
        user = await info.context.user()
        order = await service.cancel_order(info.context.session, actor=user, order_id=order_id)
        fills = await service.fills_of(info.context.session, [order.id])
        return OrderType.from_pydantic(order_out(order, fills[order.id]))

    @strawberry.mutation(description="Buy prepaid units from the platform at the tariff.")
    async def purchase(
        self,
        info: Info,
        household_id: uuid.UUID,
        resource: Resource,
        quantity: Decimal,
        idempotency_key: str,
    ) -> DealType:
        return await _deal(info, "purchase", household_id, resource, quantity, idempotency_key)

    @strawberry.mutation(description="Sell prepaid units back at the tariff less the spread.")
    async def sell_back(
        self,
        info: Info,
        household_id: uuid.UUID,
        resource: Resource,
        quantity: Decimal,
        idempotency_key: str,
    ) -> DealType:
        return await _deal(info, "sell_back", household_id, resource, quantity, idempotency_key)


async def _deal(
    info: Info,
    kind: str,
    household_id: uuid.UUID,
    resource: Resource,
    quantity: Decimal,
    idempotency_key: str,
) -> DealType:
    user = await info.context.user()
    body = validated(
        DealRequest,
        household_id=household_id,
        resource=resource,
        quantity=quantity,
        idempotency_key=idempotency_key,
    )
    act = service.purchase if kind == "purchase" else service.sell_back
    deal, _ = await act(
        info.context.session,
        chain_of(info.context.platform),
        actor=user,
        household_id=body.household_id,
        resource=body.resource,
        quantity=body.quantity,
        idempotency_key=body.idempotency_key,
    )
    [out] = await deals_out(info.context.session, [deal])
    return DealType.from_pydantic(out)

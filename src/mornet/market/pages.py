"""Market pages: a book per region and resource (depth chart, last trades, the order form
with the tariff as its ceiling, my open orders), and buying from or selling back to the
platform."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mornet.chain.dependencies import ChainDep
from mornet.dependencies import SessionDep
from mornet.households import service as households
from mornet.identity.auth import PageUser
from mornet.identity.service import User
from mornet.market import service
from mornet.market.endpoints import book_out
from mornet.market.schemas import BookOut, DealRequest, OrderRequest
from mornet.pagination import PageRequest
from mornet.resources import Resource
from mornet.tariffs import service as tariffs
from mornet.web.pages import CsrfChecked, form_decimal, redirect, render, submit_form

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Bar:
    """One price level of the depth chart: bids grow left of the middle, asks right."""

    side: str
    price: Decimal
    quantity: Decimal
    x: int
    y: int
    width: int


def depth_bars(book: BookOut, *, levels: int = 12) -> list[Bar]:
    """The chart's bars, asks above bids (the best of each nearest the middle), each as long
    as its open quantity (the template draws them as SVG, no script needed)."""
    rows = [("ask", level) for level in reversed(book.asks[:levels])] + [
        ("bid", level) for level in book.bids[:levels]
    ]
    widest = max((level.quantity for _, level in rows), default=Decimal(0))
    bars = []
    for index, (side, level) in enumerate(rows):
        width = int(260 * level.quantity / widest) + 2 if widest else 2
        x = 300 - width if side == "bid" else 320
        bars.append(Bar(side, level.price, level.quantity, x, 5 + 22 * index, width))
    return bars


async def _regions(session: SessionDep, user: User) -> list[str]:
    return sorted(await households.regions_of_owner(session, user.id))


@router.get("/market")
async def market_index(request: Request, user: PageUser, session: SessionDep) -> Response:
    regions = await _regions(session, user)
    return render(
        request,
        "market/index.html",
        {"regions": regions, "resources": list(Resource)},
        user=user,
    )


async def _book_page(
    request: Request,
    session: SessionDep,
    user: User,
    region: str,
    resource: Resource,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    region = (await tariffs.get_region(session, region)).code
    book = await book_out(session, region, resource)
    trades, _ = await service.trades(session, region, resource, PageRequest(limit=20))
    mine, _, _ = await service.orders_of(session, user, PageRequest(limit=100))
    homes = [
        d.household
        for d in await households.list_own_households(session, owner=user)
        if d.household.region_code == region
    ]
    return render(
        request,
        "market/book.html",
        {
            "book": book,
            "bars": depth_bars(book),
            "trades": trades,
            "open_orders": [
                o
                for o in mine
                if o.status == "open" and o.region == region and o.resource == resource.value
            ],
            "homes": homes,
            "region": region,
            "resource": resource,
            "amount": service.amount,
            "form": form or {},
            "error": error,
            "order_key": uuid.uuid4().hex,
        },
        user=user,
        status_code=status_code,
    )


@router.get("/market/{region}/{resource}")
async def book_page(
    request: Request, region: str, resource: Resource, user: PageUser, session: SessionDep
) -> Response:
    return await _book_page(request, session, user, region, resource)


@router.post("/market/{region}/{resource}/orders", dependencies=[CsrfChecked])
async def place(
    request: Request,
    region: str,
    resource: Resource,
    user: PageUser,
    session: SessionDep,
    chain: ChainDep,
    side: Annotated[str, Form()] = "",
    price: Annotated[str, Form()] = "",
    quantity: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
) -> Response:
    async def place_it() -> Response:
        body = OrderRequest.model_validate(
            {
                "region": region,
                "resource": resource,
                "side": side,
                "price": form_decimal("price", price),
                "quantity": form_decimal("quantity", quantity),
                "idempotency_key": idempotency_key or uuid.uuid4().hex,
            }
        )
        await service.place_order(
            session,
            chain,
            actor=user,
            region=body.region,
            resource=body.resource,
            side=body.side,
            price=body.price,
            quantity=body.quantity,
            idempotency_key=body.idempotency_key,
        )
        return redirect(f"/market/{body.region}/{resource.value}")

    async def refused(message: str, status: int) -> Response:
        form = {"side": side, "price": price, "quantity": quantity}
        return await _book_page(
            request, session, user, region, resource, form=form, error=message, status_code=status
        )

    return await submit_form(session, place_it, refused)


@router.post("/market/orders/{order_id}/cancel", dependencies=[CsrfChecked])
async def cancel(order_id: uuid.UUID, user: PageUser, session: SessionDep) -> Response:
    order = await service.cancel_order(session, actor=user, order_id=order_id)
    return redirect(f"/market/{order.region}/{order.resource}")


@router.post("/market/{region}/{resource}/deals", dependencies=[CsrfChecked])
async def deal(
    request: Request,
    region: str,
    resource: Resource,
    user: PageUser,
    session: SessionDep,
    chain: ChainDep,
    action: Annotated[str, Form()] = "purchase",
    household_id: Annotated[str, Form()] = "",
    quantity: Annotated[str, Form()] = "",
    idempotency_key: Annotated[str, Form()] = "",
) -> Response:
    async def deal_it() -> Response:
        body = DealRequest.model_validate(
            {
                "household_id": household_id,
                "resource": resource,
                "quantity": form_decimal("quantity", quantity),
                "idempotency_key": idempotency_key or uuid.uuid4().hex,
            }
        )
        act = service.sell_back if action == "sell_back" else service.purchase
        await act(
            session,
            chain,
            actor=user,
            household_id=body.household_id,
            resource=body.resource,
            quantity=body.quantity,
            idempotency_key=body.idempotency_key,
        )
        return redirect(f"/market/{region}/{resource.value}")

    async def refused(message: str, status: int) -> Response:
        form = {"deal_quantity": quantity, "action": action}
        return await _book_page(
            request, session, user, region, resource, form=form, error=message, status_code=status
        )

    return await submit_form(session, deal_it, refused)

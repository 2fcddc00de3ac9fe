"""The market over the API on a real chain: purchases at the tariff, sell-backs with the
spread, and an order book whose fills move tokens wallet to wallet, with holds that keep
open orders' funds from being spent twice."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.api import create_app
from mornet.chain.service import ChainHandle
from mornet.market import service as market
from mornet.resources import Resource
from mornet.runtime import Runtime
from tests.cost.helpers import region_with_a_change
from tests.market.helpers import Trader, balance, give, settle, trader

# region_with_a_change: electricity at 8 RUB/kWh since 1 November 2026, water at 40 RUB/m³.


def _key() -> str:
    return str(uuid.uuid4())


async def _deal(
    client: httpx.AsyncClient, who: Trader, path: str, quantity: str, key: str | None = None
) -> httpx.Response:
    return await client.post(
        f"/api/market/{path}",
        json={
            "household_id": str(who.household_id),
            "resource": "E",
            "quantity": quantity,
            "idempotency_key": key or _key(),
        },
        headers=who.headers,
    )


async def _order(
    client: httpx.AsyncClient, who: Trader, region: str, side: str, price: str, quantity: str
) -> httpx.Response:
    return await client.post(
        "/api/market/orders",
        json={
            "region": region,
            "resource": "E",
            "side": side,
            "price": price,
            "quantity": quantity,
            "idempotency_key": _key(),
        },
        headers=who.headers,
    )


async def test_purchases_are_at_the_tariff_and_sell_backs_pay_it_less_the_spread(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    buyer = await trader(client, session, region)
    await give(runtime, chain, str(buyer.user_id), GCC="100")

    key = _key()
    bought = await _deal(client, buyer, "purchases", "2.5", key)
    assert bought.status_code == 201, bought.text
    assert (bought.json()["kind"], Decimal(bought.json()["amount_gcc"])) == ("purchase", 20)
    again = await _deal(client, buyer, "purchases", "2.5", key)
    assert (again.status_code, again.json()["id"]) == (200, bought.json()["id"])
    reused = await _deal(client, buyer, "purchases", "3", key)
    assert reused.status_code == 409
    await settle(runtime, chain)
    assert await balance(chain, session, buyer.user_id, "E") == Decimal("2.5")
    assert await balance(chain, session, buyer.user_id, "GCC") == 80
    assert Decimal(await chain.balance_of("GCC", market.MARKET_RESERVE)) / 10**18 == 20

    too_much = await _deal(client, buyer, "purchases", "10.001")  # 80.008 > 80
    assert too_much.status_code == 422
    assert too_much.json()["error"]["code"] == "insufficient_balance"

    sold = await _deal(client, buyer, "sell-backs", "1")
    assert sold.status_code == 201, sold.text
    assert (Decimal(sold.json()["amount_gcc"]), Decimal(sold.json()["spread"])) == (
        Decimal("7.84"),  # 8 RUB less 2%
        Decimal("0.02"),
    )
    await settle(runtime, chain)
    assert await balance(chain, session, buyer.user_id, "E") == Decimal("1.5")
    assert await balance(chain, session, buyer.user_id, "GCC") == Decimal("87.84")
    listed = await client.get("/api/market/deals", headers=buyer.headers)
    assert [d["status"] for d in listed.json()["items"]] == ["confirmed", "confirmed"]

    stranger = await trader(client, session, region)
    stolen = await client.post(
        "/api/market/purchases",
        json={
            "household_id": str(buyer.household_id),
            "resource": "E",
            "quantity": "1",
            "idempotency_key": _key(),
        },
        headers=stranger.headers,
    )
    assert stolen.status_code == 404


async def test_a_sell_back_the_reserve_cannot_pay_moves_nothing(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="1000")
    reserve = Decimal(await chain.balance_of("GCC", market.MARKET_RESERVE)) / 10**18
    quantity = (reserve / 8 + 10).quantize(Decimal("0.001"))  # worth more than the reserve
    short = await _deal(client, seller, "sell-backs", str(quantity))
    assert short.status_code == 422
    assert short.json()["error"]["code"] == "market_reserve_short"
    await settle(runtime, chain)
    assert await balance(chain, session, seller.user_id, "E") == 1000


async def test_two_households_trade_e_on_the_book_with_holds(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    buyer = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="5")
    await give(runtime, chain, str(buyer.user_id), GCC="100")

    ask = await _order(client, seller, region, "sell", "7.00", "2")
    assert ask.status_code == 201, ask.text
    assert (ask.json()["status"], ask.json()["remaining"]) == ("open", "2.000")
    # Two of the five E are held by the order: a transfer of four is refused.
    held = await client.post(
        "/api/wallet/transfers",
        json={"token": "E", "to": str(buyer.user_id), "amount": "4", "idempotency_key": _key()},
        headers=seller.headers,
    )
    assert held.status_code == 422, held.text
    assert held.json()["error"]["code"] == "insufficient_balance"
    wallet = (await client.get("/api/wallet", headers=seller.headers)).json()
    assert (Decimal(wallet["balances"]["E"]), Decimal(wallet["held"]["E"])) == (5, 2)

    bid = await _order(client, buyer, region, "buy", "7.50", "3")
    assert bid.status_code == 201, bid.text
    body: dict[str, Any] = bid.json()
    assert (body["status"], body["remaining"]) == ("open", "1.000")
    assert [(f["price"], f["quantity"]) for f in body["fills"]] == [("7.00", "2.000")]
    await settle(runtime, chain)
    assert await balance(chain, session, seller.user_id, "E") == 3
    assert await balance(chain, session, seller.user_id, "GCC") == 14
    assert await balance(chain, session, buyer.user_id, "E") == 2
    assert await balance(chain, session, buyer.user_id, "GCC") == 86

    book = (await client.get(f"/api/market/books/{region}/E")).json()
    assert [(b["price"], b["quantity"]) for b in book["bids"]] == [("7.50", "1.000")]
    assert (book["asks"], book["best_bid"], book["last_price"], book["tariff"]) == (
        [],
        "7.50",
        "7.00",
        "8.0000",
    )
    public = {"region": region, "resource": "E"}
    trades = (await client.get("/api/market/trades", params=public)).json()
    [trade] = trades["items"]
    assert (trade["price"], trade["quantity"], trade["taker_side"]) == ("7.00", "2.000", "buy")
    assert not {"buyer_id", "seller_id"} & set(trade)

    # The buyer's 7.50 for the last unit is held until the order is cancelled.
    spend = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": str(seller.user_id), "amount": "80", "idempotency_key": _key()},
        headers=buyer.headers,
    )
    assert spend.status_code == 422
    foreign = await client.delete(f"/api/market/orders/{body['id']}", headers=seller.headers)
    assert foreign.status_code == 404
    cancelled = await client.delete(f"/api/market/orders/{body['id']}", headers=buyer.headers)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    again = await client.delete(f"/api/market/orders/{body['id']}", headers=buyer.headers)
    assert again.status_code == 409
    spend = await client.post(
        "/api/wallet/transfers",
        json={"token": "GCC", "to": str(seller.user_id), "amount": "80", "idempotency_key": _key()},
        headers=buyer.headers,
    )
    assert spend.status_code == 202, spend.text
    mine = (await client.get("/api/market/orders", headers=buyer.headers)).json()["items"]
    assert [(o["status"], len(o["fills"])) for o in mine] == [("cancelled", 1)]

    live, replayed = await market.book_digests(session, region, Resource.ELECTRICITY)
    assert live == replayed


async def test_bad_orders_are_refused_with_a_reason_and_hold_nothing(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    elsewhere = await region_with_a_change(session)
    seller = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="5")
    cases = [
        (region, "8.01", "1", 422, "price_above_tariff"),
        (region, "0", "1", 422, None),
        (region, "7.001", "1", 422, None),
        (region, "7", "0", 422, None),
        (region, "7", "1.0001", 422, None),
        ("XX-YYY", "7", "1", 404, None),
        (elsewhere, "7", "1", 422, "no_household_in_region"),
        (region, "7", "6", 422, "insufficient_balance"),
    ]
    for where, price, quantity, status, code in cases:
        refused = await _order(client, seller, where, "sell", price, quantity)
        assert refused.status_code == status, (where, price, quantity, refused.text)
        if code:
            assert refused.json()["error"]["code"] == code
    book = (await client.get(f"/api/market/books/{region}/E")).json()
    assert (book["bids"], book["asks"]) == ([], [])
    # Nothing was held: all five can move.
    moved = await client.post(
        "/api/wallet/transfers",
        json={"token": "E", "to": str(uuid.uuid4()), "amount": "5", "idempotency_key": _key()},
        headers=seller.headers,
    )
    assert moved.status_code != 422, moved.text


async def test_an_order_replayed_with_its_key_is_placed_once(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A retry with the same key returns the order (200) and holds nothing more, also when
    both copies reach the book together; the key with another body is a 409."""
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="5")
    body = {"region": region, "resource": "E", "side": "sell", "price": "7.00", "quantity": "2"}

    async def place(key: str, **changed: str) -> httpx.Response:
        return await client.post(
            "/api/market/orders",
            json={**body, **changed, "idempotency_key": key},
            headers=seller.headers,
        )

    first = await place("once")
    assert first.status_code == 201, first.text
    again = await place("once")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    other = await place("once", quantity="1")
    assert other.status_code == 409, other.text
    together = await asyncio.gather(place("twice"), place("twice"))
    assert sorted(a.status_code for a in together) == [200, 201]
    assert together[0].json()["id"] == together[1].json()["id"]
    mine = (await client.get("/api/market/orders", headers=seller.headers)).json()["items"]
    assert len(mine) == 2
    wallet = (await client.get("/api/wallet", headers=seller.headers)).json()
    assert Decimal(wallet["held"]["E"]) == 4  # two orders of two, not four


async def test_many_buyers_at_once_fill_a_resting_order_once(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="1")
    buyers = [await trader(client, session, region) for _ in range(4)]
    for buyer in buyers:
        await give(runtime, chain, str(buyer.user_id), GCC="10")
    ask = await _order(client, seller, region, "sell", "7", "1")
    assert ask.status_code == 201
    answers = await asyncio.gather(*(_order(client, b, region, "buy", "7", "1") for b in buyers))
    assert all(a.status_code in (201, 503) for a in answers), [a.text for a in answers]
    filled = [a for a in answers if a.status_code == 201 and a.json()["fills"]]
    assert len(filled) == 1
    await settle(runtime, chain)
    assert await balance(chain, session, seller.user_id, "E") == 0
    assert await balance(chain, session, seller.user_id, "GCC") == 7
    live, replayed = await market.book_digests(session, region, Resource.ELECTRICITY)
    assert live == replayed


async def test_a_cancel_racing_a_fill_exactly_one_wins(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    buyer = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="1")
    await give(runtime, chain, str(buyer.user_id), GCC="10")
    ask = (await _order(client, seller, region, "sell", "7", "1")).json()
    cancel, buy = await asyncio.gather(
        client.delete(f"/api/market/orders/{ask['id']}", headers=seller.headers),
        _order(client, buyer, region, "buy", "7", "1"),
    )
    assert buy.status_code == 201, buy.text
    if cancel.status_code == 200:
        assert buy.json()["fills"] == []
    else:
        assert cancel.status_code == 409
        assert len(buy.json()["fills"]) == 1
    await settle(runtime, chain)
    sold = await balance(chain, session, seller.user_id, "E") == 0
    assert sold == (cancel.status_code == 409)


async def test_a_book_written_by_another_process_is_read_again_before_matching(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Each API process keeps its books in memory between orders. Process B fills the ask
    that process A's book still shows; A's next order must match the book as it is now."""
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    first_buyer = await trader(client, session, region)
    second_buyer = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="5")
    await give(runtime, chain, str(first_buyer.user_id), GCC="100")
    await give(runtime, chain, str(second_buyer.user_id), GCC="100")
    other = Runtime.from_settings(runtime.settings)
    other.chain = chain
    b = httpx.AsyncClient(transport=httpx.ASGITransport(create_app(other)), base_url="http://b")
    try:
        ask = await _order(client, seller, region, "sell", "7.00", "2")  # A
        assert (ask.status_code, ask.json()["status"]) == (201, "open")
        taken = await _order(b, first_buyer, region, "buy", "7.00", "2")  # B
        assert (taken.status_code, taken.json()["status"]) == (201, "filled"), taken.text
        late = await _order(client, second_buyer, region, "buy", "7.00", "1")  # A again
        assert late.status_code == 201, late.text
        assert (late.json()["status"], late.json()["fills"]) == ("open", [])
        # And the other way: B learns of A's new bid before matching a sell against it.
        sell = await _order(b, seller, region, "sell", "6.50", "1")
        assert [(f["price"], f["quantity"]) for f in sell.json()["fills"]] == [("7.00", "1.000")]
    finally:
        await b.aclose()
        await other.close()
    live, replayed = await market.book_digests(session, region, Resource.ELECTRICITY)
    assert live == replayed


async def test_orders_arriving_together_are_matched_in_order_and_each_answered(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Orders that reach a book together share its transactions; each still gets its own
    answer: a fill, a rest, or its own refusal, which refuses nothing else."""
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    buyers = [await trader(client, session, region) for _ in range(6)]
    broke = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="3")
    for buyer in buyers:
        await give(runtime, chain, str(buyer.user_id), GCC="20")
    ask = await _order(client, seller, region, "sell", "7.00", "3")
    assert ask.status_code == 201
    answers = await asyncio.gather(
        _order(client, broke, region, "buy", "7.00", "1"),
        *(_order(client, b, region, "buy", "7.00", "1") for b in buyers),
    )
    assert answers[0].status_code == 422
    assert answers[0].json()["error"]["code"] == "insufficient_balance"
    statuses = sorted(a.json()["status"] for a in answers[1:])
    assert statuses == ["filled"] * 3 + ["open"] * 3
    mine = (await client.get("/api/market/orders", headers=seller.headers)).json()["items"]
    assert [(o["status"], o["remaining"], len(o["fills"])) for o in mine] == [
        ("filled", "0.000", 3)
    ]
    live, replayed = await market.book_digests(session, region, Resource.ELECTRICITY)
    assert live == replayed
    await settle(runtime, chain)
    assert await balance(chain, session, seller.user_id, "GCC") == 21


async def test_prepaid_units_move_only_between_households_of_one_region(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    sender = await trader(client, session, region)
    neighbour = await trader(client, session, region)
    faraway = await trader(client, session, await region_with_a_change(session))
    await give(runtime, chain, str(sender.user_id), E="3", GCC="3")

    async def send(token: str, to: Trader) -> httpx.Response:
        return await client.post(
            "/api/wallet/transfers",
            json={"token": token, "to": str(to.user_id), "amount": "1", "idempotency_key": _key()},
            headers=sender.headers,
        )

    assert (await send("E", neighbour)).status_code == 202
    refused = await send("E", faraway)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "other_region"
    assert (await send("GCC", faraway)).status_code == 202  # GCC moves freely


async def test_the_market_over_graphql(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    from tests.test_graphql import error_codes, gql

    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    buyer = await trader(client, session, region)
    await give(runtime, chain, str(buyer.user_id), GCC="50")
    bought = await gql(
        client,
        "mutation($h: UUID!, $k: String!) { purchase(householdId: $h, resource: ELECTRICITY, "
        'quantity: "3", idempotencyKey: $k) { kind amountGcc status } }',
        seller.headers,
        h=str(seller.household_id),
        k=_key(),
    )
    assert error_codes(bought) == ["insufficient_balance"], bought  # the seller has no GCC
    await give(runtime, chain, str(seller.user_id), GCC="24")
    bought = await gql(
        client,
        "mutation($h: UUID!, $k: String!) { purchase(householdId: $h, resource: ELECTRICITY, "
        'quantity: "3", idempotencyKey: $k) { kind amountGcc } }',
        seller.headers,
        h=str(seller.household_id),
        k=_key(),
    )
    assert bought["data"]["purchase"] == {"kind": "PURCHASE", "amountGcc": "24.00"}
    await settle(runtime, chain)
    place = (
        "mutation($r: String!, $side: Side!, $k: String!) { placeOrder(region: $r,"
        ' resource: ELECTRICITY, side: $side, price: "6.5", quantity: "2", idempotencyKey: $k)'
        " { id status remaining fills { price quantity } } }"
    )
    ask = await gql(client, place, seller.headers, r=region, side="SELL", k=_key())
    assert ask["data"]["placeOrder"]["status"] == "OPEN", ask
    bid = await gql(client, place, buyer.headers, r=region, side="BUY", k=_key())
    assert bid["data"]["placeOrder"]["status"] == "FILLED"
    assert bid["data"]["placeOrder"]["fills"] == [{"price": "6.50", "quantity": "2.000"}]
    book = await gql(
        client,
        "query($r: String!) { book(region: $r, resource: ELECTRICITY)"
        " { lastPrice tariff bids { price } } }",
        r=region,
    )
    assert book["data"]["book"] == {"lastPrice": "6.50", "tariff": "8.0000", "bids": []}
    mine = await gql(client, "{ myOrders { status } }", seller.headers)
    assert mine["data"]["myOrders"] == [{"status": "FILLED"}]

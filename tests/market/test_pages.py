"""Two households of one region trade E through the market pages: the order form with the
tariff as its ceiling, the depth chart, buying from the platform, cancelling, last trades."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mornet.chain.service import ChainHandle
from mornet.runtime import Runtime
from tests.cost.helpers import region_with_a_change
from tests.market.helpers import balance, give, settle, trader
from tests.web.test_pages import csrf_from, page_login


async def test_two_households_trade_through_the_pages(
    runtime: Runtime, chain: ChainHandle, client: httpx.AsyncClient, session: AsyncSession
) -> None:
    region = await region_with_a_change(session)
    seller = await trader(client, session, region)
    buyer = await trader(client, session, region)
    await give(runtime, chain, str(seller.user_id), E="5")
    await give(runtime, chain, str(buyer.user_id), GCC="40")
    book_url = f"/market/{region}/E"

    await page_login(client, seller.email)
    index = await client.get("/market")
    assert f'href="{book_url}"' in index.text
    page = await client.get(book_url)
    assert page.status_code == 200
    assert "8.0000 RUB per kWh" in page.text
    too_dear = await client.post(
        f"{book_url}/orders",
        data={"side": "sell", "price": "9", "quantity": "1", "csrf_token": csrf_from(page)},
    )
    assert too_dear.status_code == 422
    assert "at most the tariff" in too_dear.text
    placed = await client.post(
        f"{book_url}/orders",
        data={"side": "sell", "price": "7", "quantity": "2", "csrf_token": csrf_from(page)},
    )
    assert placed.status_code == 303, placed.text
    page = await client.get(book_url)
    assert '<svg id="depth"' in page.text
    assert 'class="ask"' in page.text
    assert 'id="my-orders"' in page.text
    extra = await client.post(
        f"{book_url}/orders",
        data={"side": "sell", "price": "7.9", "quantity": "1", "csrf_token": csrf_from(page)},
    )
    assert extra.status_code == 303
    page = await client.get(book_url)
    [extra_id] = [
        order_id
        for order_id in re.findall(r"/market/orders/([0-9a-f-]+)/cancel", page.text)
        if "7.90" in page.text.split(order_id)[0].rsplit("<tr>", 1)[-1]
    ]
    cancelled = await client.post(
        f"/market/orders/{extra_id}/cancel", data={"csrf_token": csrf_from(page)}
    )
    assert cancelled.status_code == 303

    client.cookies.clear()  # sign out the seller
    await page_login(client, buyer.email)
    page = await client.get(book_url)
    bought = await client.post(
        f"{book_url}/deals",
        data={
            "household_id": str(buyer.household_id),
            "quantity": "1",
            "action": "purchase",
            "csrf_token": csrf_from(page),
        },
    )
    assert bought.status_code == 303, bought.text
    filled = await client.post(
        f"{book_url}/orders",
        data={"side": "buy", "price": "7.50", "quantity": "2", "csrf_token": csrf_from(page)},
    )
    assert filled.status_code == 303, filled.text
    await settle(runtime, chain)
    page = await client.get(book_url)
    assert 'id="last-price">7.00<' in page.text
    trades = page.text[page.text.index('id="trades"') :]
    assert "<td>7.00</td><td>2.000</td>" in trades
    # 1 E bought at 8 and 2 at 7 on the book: 40 - 8 - 14 = 18 GCC, 3 E.
    assert await balance(chain, session, buyer.user_id, "E") == 3
    assert await balance(chain, session, buyer.user_id, "GCC") == 18
    assert await balance(chain, session, seller.user_id, "GCC") == 14

"""Two operators pay from the DAO treasury in Debian's Chromium against a real
`mornet up --simulate 1` (which makes three demo operators owning a 2-of-3 Safe)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from mornet.bench.harness import running_platform
from tests.e2e.test_browser import _log_in, _register, _until
from tests.e2e.test_browser import browser as browser  # the module-scoped fixture

pytestmark = pytest.mark.browser

OPERATOR_1 = ("operator1@example.org", "operator1-password")
OPERATOR_2 = ("operator2@example.org", "operator2-password")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_platform(
        tmp_path_factory.mktemp("treasury"), admin=OPERATOR_1, up_args=["--simulate", "1"]
    ) as base:
        yield base


def _poll(check: Any, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "the platform did not get there in time"
        time.sleep(0.5)


def test_two_operators_confirm_a_transfer_from_the_treasury_and_the_receiver_sees_it(
    platform: str, browser: Browser, tmp_path: Path
) -> None:
    token = httpx.post(
        f"{platform}/api/auth/login", json={"email": OPERATOR_1[0], "password": OPERATOR_1[1]}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    def active() -> dict[str, Any] | None:
        shown = httpx.get(f"{platform}/api/treasury", headers=headers)
        return shown.json() if shown.status_code == 200 and shown.json()["address"] else None

    safe = _poll(active)["address"]
    minted = httpx.post(
        f"{platform}/api/token/mint",
        json={"token": "E", "account": safe, "amount": "10", "idempotency_key": "fund-treasury"},
        headers=headers,
    )
    assert minted.status_code == 202, minted.text
    _poll(lambda: Decimal(active()["balances"].get("E", 0)) == 10)  # type: ignore[index]

    receiver_context = browser.new_context()
    receiver = receiver_context.new_page()
    _register(receiver, platform, "Irina Volkova", "irina@example.com", "irina-password")

    first_context = browser.new_context()
    first = first_context.new_page()
    _log_in(first, platform, *OPERATOR_1)
    first.get_by_role("link", name="Treasury").click()
    expect(first.locator("#treasury-address")).to_contain_text(safe)
    first.get_by_label("Kind").select_option("transfer")
    first.get_by_label("Token").select_option("E")
    first.get_by_label("To (email, user id or address)").fill("irina@example.com")
    first.get_by_label("Amount").fill("4")
    first.get_by_label("Description").fill("Prepaid kWh for the new household")
    first.get_by_role("button", name="Propose").click()
    proposal = first.locator("#open-proposals tr", has_text="Prepaid kWh for the new household")
    expect(proposal).to_contain_text("0 of 2 confirmations")
    proposal.get_by_role("button", name="Confirm").click()
    expect(proposal).to_contain_text("1 of 2 confirmations")
    expect(proposal).to_contain_text("You voted")

    second_context = browser.new_context()
    second = second_context.new_page()
    _log_in(second, platform, *OPERATOR_2)
    second.goto(f"{platform}/treasury")
    pending = second.locator("#open-proposals tr", has_text="Prepaid kWh for the new household")
    expect(pending).to_contain_text("1 of 2 confirmations")
    pending.get_by_role("button", name="Confirm").click()
    history = second.locator("#proposal-history tr", has_text="Prepaid kWh for the new household")
    _until(second, lambda: history.count() == 1 and "executed" in history.inner_text())

    receiver.goto(f"{platform}/wallet")
    _until(receiver, lambda: Decimal(receiver.locator("[data-token='E']").inner_text()) == 4)
    expect(receiver.locator("#wallet-history")).to_contain_text(safe)
    receiver.screenshot(path=str(tmp_path / "wallet-after-treasury-transfer.png"), full_page=True)
    for context in (receiver_context, first_context, second_context):
        context.close()

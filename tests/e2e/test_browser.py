"""A person's path through the platform, in Debian's Chromium driven by Playwright against a
real `mornet up` process on embedded defaults."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from mornet.bench.harness import running_platform

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("MORNET_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
# Without these, Chromium spends its start-up reaching for Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_EMAIL = "operator@example.com"
ADMIN_PASSWORD = "operator-password"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_platform(
        tmp_path_factory.mktemp("platform"), admin=(ADMIN_EMAIL, ADMIN_PASSWORD)
    ) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def _log_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _register(page: Page, base: str, full_name: str, email: str, password: str) -> None:
    page.goto(f"{base}/register")
    page.get_by_label("Full name").fill(full_name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Your households")).to_be_visible()


def test_register_create_household_then_get_blocked(
    platform: str, browser: Browser, tmp_path: Path
) -> None:
    household_context = browser.new_context()
    user = household_context.new_page()
    _register(user, platform, "Svetlana Orlova", "svetlana@example.com", "svetlana-pass")

    # Log out and back in, as the path asks.
    user.get_by_role("button", name="Log out").click()
    expect(user.get_by_role("heading", name="Log in")).to_be_visible()
    _log_in(user, platform, "svetlana@example.com", "svetlana-pass")
    expect(user).to_have_url(f"{platform}/dashboard")  # a household lands on its dashboard
    user.get_by_role("link", name="Households", exact=True).click()
    expect(user.get_by_role("heading", name="Your households")).to_be_visible()

    user.get_by_label("Name").fill("Flat on Nevsky")
    user.get_by_label("Address").fill("Nevsky prospekt 10, apt 5")
    user.get_by_label("Region").select_option("RU-SPE")
    user.get_by_role("button", name="Add household").click()
    expect(user.get_by_role("heading", name="Flat on Nevsky")).to_be_visible()
    user.get_by_role("button", name="Register an agent").click()
    expect(user.locator("#agent-config")).to_contain_text("agent_secret")
    user.goto(f"{platform}/households")
    expect(user.locator(".household-link")).to_have_text(["Flat on Nevsky"])
    user.screenshot(path=str(tmp_path / "households.png"), full_page=True)

    admin_context = browser.new_context()
    admin = admin_context.new_page()
    _log_in(admin, platform, ADMIN_EMAIL, ADMIN_PASSWORD)
    admin.goto(f"{platform}/admin/users")
    row = admin.locator("tr[data-email='svetlana@example.com']")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Block").click()
    expect(admin.locator("tr[data-email='svetlana@example.com']")).to_contain_text("blocked")
    admin.goto(f"{platform}/admin/households")
    expect(admin.get_by_text("Flat on Nevsky")).to_be_visible()

    response = user.goto(f"{platform}/households")
    assert response is not None
    assert response.status == 403
    expect(user.get_by_role("heading", name="Account blocked")).to_be_visible()
    _log_in(user, platform, "svetlana@example.com", "svetlana-pass")
    expect(user.get_by_role("alert")).to_contain_text("blocked")
    expect(user.get_by_role("heading", name="Log in")).to_be_visible()

    household_context.close()
    admin_context.close()


def _until(page: Page, check: Callable[[], bool], *, seconds: float = 60) -> None:
    """Reload `page` until `check()` holds (the chain and the bank work in the background)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"still not there: {page.url}"
        time.sleep(0.5)
        page.reload()


def _gcc(page: Page) -> Decimal:
    return Decimal(page.locator("[data-token='GCC']").inner_text())


def test_top_up_500_through_the_bank_then_withdraw_200_to_a_card(
    platform: str, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context()
    user = context.new_page()
    _register(user, platform, "Pavel Sokolov", "pavel@example.com", "pavel-password")

    # Top up: the amount, then the sandbox bank's payment page, then back to the bank page.
    user.get_by_role("link", name="Bank").click()
    user.get_by_label("Amount, RUB").fill("500")
    user.get_by_role("button", name="Continue to the bank").click()
    expect(user.get_by_role("heading", name="Sandbox bank")).to_be_visible()
    expect(user.get_by_text("500.00 RUB").first).to_be_visible()
    user.get_by_role("button", name="Pay 500.00 RUB").click()
    expect(user.get_by_role("heading", name="Top up")).to_be_visible()
    # The status updates on the page by itself once the bank confirms.
    expect(user.locator("#deposits")).to_contain_text("CONFIRMED", timeout=30_000)
    user.goto(f"{platform}/wallet")
    _until(user, lambda: _gcc(user) == 500)

    # Withdraw: bind a card on the bank's form, then 200 RUB to it.
    user.goto(f"{platform}/bank/withdrawals")
    user.get_by_role("button", name="Bind a card at the bank").click()
    user.get_by_role("button", name="Bind this card").click()
    expect(user.get_by_role("heading", name="Withdraw to a card")).to_be_visible()
    _until(user, lambda: user.locator("#cards").inner_text().count("active") == 1)
    user.get_by_label("Amount, RUB").fill("200")
    user.get_by_role("button", name="Withdraw").click()
    expect(user.locator("#withdrawals")).to_contain_text("paid", timeout=60_000)
    user.goto(f"{platform}/wallet")
    _until(user, lambda: _gcc(user) == 300)
    user.screenshot(path=str(tmp_path / "wallet-after-withdrawal.png"), full_page=True)

    operator_context = browser.new_context()
    operator = operator_context.new_page()
    _log_in(operator, platform, ADMIN_EMAIL, ADMIN_PASSWORD)
    operator.goto(f"{platform}/admin/bank")
    # The burn of the paid 200 GCC may still be in flight: the reserves are ok either way,
    # and once it lands the supply is 300.
    supply = operator.locator("#reserves tr", has_text="GCC supply")
    _until(operator, lambda: Decimal(supply.locator("td").inner_text()) == 300)
    expect(operator.locator("#reserves-verdict")).to_contain_text("ok")
    expect(operator.locator("#reserves-verdict")).not_to_contain_text("NOT OK")
    expect(operator.locator("#reserves tr", has_text="Paid withdrawals")).to_contain_text("200")
    context.close()
    operator_context.close()

"""The Destinations page in a real browser, with the gateway delivering to a real receiver on
loopback: a destination defined in the console shows its secret once; its failures and dead
letters are listed; a dead letter replayed from the console reaches the receiver under its own
batch id, signed; pause, resume and a resend of a time range; the layout at 1280 and 390 px."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from profilegate.settings import Settings
from tests.browser.conftest import PHONE, WIDE, Console
from tests.browser.test_console import call, log_in
from tests.destination_receiver import Receiver, receiving

pytestmark = pytest.mark.browser
SIZES = {"wide": WIDE, "phone": PHONE}
UPSERT = """
mutation ($email: String!) {
  upsertProfile(input: {
    identities: [{type: EMAIL, value: $email}]
    consents: [{purpose: "email_marketing", granted: true, source: "checkout"}]
  }) { __typename }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Loopback receivers allowed, and retries short enough that a dead letter comes in a second."""
    return settings.model_copy(
        update={
            "shop_time_zone": "Europe/Berlin",
            "destinations_allow_private": True,
            "destinations_retry_first_seconds": 0.05,
            "destinations_retry_max_seconds": 0.2,
            "destinations_retry_for_seconds": 0.8,
            "destinations_refresh_seconds": 0.2,
            "destinations_pause_after_dead_letters": 100,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(Receiver(default="fail")) as started:
        yield started


async def define(page: Page, receiver: Receiver) -> str:
    """Define the newsletter destination in the console's form; the secret it shows."""
    await page.get_by_role("link", name="Destinations").click()
    form = page.get_by_role("form", name="Define a destination")
    await form.get_by_label("Id", exact=True).fill("esp-newsletter")
    await form.get_by_label("Name", exact=True).fill("E-mail service: weekly newsletter to opted-in shoppers")
    await form.get_by_label("URL").fill(receiver.url)
    await form.get_by_label("Consent purpose").fill("email_marketing")
    await form.get_by_label("Other changes").select_option(["PROFILE_CREATED"])
    await form.get_by_label("Personal fields (comma-separated)").fill("identities")
    await form.get_by_label("Longest wait (s)").fill("0")
    await form.get_by_role("button", name="Define destination").click()
    secret = await form.locator("[data-secret]").text_content()
    assert secret is not None
    assert secret.startswith("whsec_")
    receiver.secrets.append(secret)
    return secret


def shopper_opts_in(console: Console, email: str) -> None:
    time.sleep(0.5)  # the gateway looks at its destinations every 0.2 s
    call(console.base, UPSERT, {"email": email})


async def open_with_dead_letter(page: Page) -> None:
    await page.get_by_role("button", name="Open E-mail service: weekly newsletter").click()
    detail = page.locator("section[aria-labelledby=d-detail]")
    for _ in range(40):
        await expect(detail.get_by_role("heading", name="Dead letters")).to_be_visible()
        if await detail.get_by_role("button", name="Replay").count():
            return
        await page.wait_for_timeout(250)
        await detail.get_by_role("button", name="Refresh").click()
    raise AssertionError(await detail.inner_text())


async def test_a_dead_letter_replayed_from_the_console_reaches_the_receiver_under_its_batch_id(
    console: Console, receiver: Receiver
) -> None:
    page = console.page
    await log_in(console)
    secret = await define(page, receiver)
    shopper_opts_in(console, "replay.me@example.com")
    await open_with_dead_letter(page)
    detail = page.locator("section[aria-labelledby=d-detail]")
    failures = detail.locator("table").first
    await expect(failures).to_contain_text("answered 500")
    await expect(failures).to_contain_text("dead lettered")
    batch_id = await detail.locator("td code.id").first.text_content()
    assert batch_id is not None
    assert batch_id.startswith("msg_")
    receiver.default = "ok"
    await detail.get_by_role("button", name=f"Replay {batch_id}").click()
    await expect(detail.locator("p[data-note]")).to_have_text(f"Replayed {batch_id}: the receiver took it.")
    await expect(detail).to_contain_text("No dead letter.")
    [delivered] = receiver.delivered()
    assert delivered.batch_id == batch_id
    assert delivered.verified
    assert delivered.messages[0]["profile"]["identities"] == [
        {"type": "email", "value": "replay.me@example.com"}
    ]
    await page.reload()
    await page.get_by_role("link", name="Destinations").click()
    await expect(page.get_by_role("button", name="Open E-mail service: weekly newsletter")).to_be_visible()
    assert secret not in await page.content()  # shown once, at creation
    await console.assert_stayed_home()


async def test_pause_resume_and_a_resend_of_a_shop_time_range(console: Console, receiver: Receiver) -> None:
    page = console.page
    receiver.default = "ok"
    await log_in(console)
    await define(page, receiver)
    shopper_opts_in(console, "resend.me@example.com")
    [first] = receiver.wait_for(1)
    await page.get_by_role("button", name="Open E-mail service: weekly newsletter").click()
    detail = page.locator("section[aria-labelledby=d-detail]")
    await detail.get_by_role("button", name="Pause").click()
    await expect(detail.locator("[data-state]")).to_have_text("paused: paused by an admin")
    await expect(page.locator("section[aria-labelledby=d-list]")).to_contain_text("paused")
    await detail.get_by_role("button", name="Resume").click()
    await expect(detail.locator("[data-state]")).to_have_text("enabled")
    # The change was made at 10:00 UTC, 11:00 in Berlin, the shop's zone.
    form = detail.get_by_role("form", name="Resend a time range")
    await form.get_by_label("From").fill("2026-11-20T10:30")
    await form.get_by_label("To").fill("2026-11-20T11:30")
    await form.get_by_role("button", name="Resend").click()
    await expect(form.get_by_role("status")).to_contain_text("Resend queued")
    first_again = receiver.wait_for(2)[1]
    assert first_again["cursor"] == first["cursor"]
    ids = [one.batch_id for one in receiver.delivered()]
    assert len(set(ids)) == 2  # a resend goes out under a new batch id
    await form.get_by_label("From").fill("2026-11-20T11:30")
    await form.get_by_label("To").fill("2026-11-20T10:30")
    await form.get_by_role("button", name="Resend").click()
    await expect(form.locator(".error")).to_contain_text("must be after from")
    await console.assert_stayed_home()


async def test_a_refused_url_is_shown_by_its_input(console: Console, settings: Settings) -> None:
    page = console.page
    await log_in(console)
    await page.get_by_role("link", name="Destinations").click()
    form = page.get_by_role("form", name="Define a destination")
    await form.get_by_label("Id", exact=True).fill("ads")
    await form.get_by_label("Name", exact=True).fill("Ads")
    await form.get_by_label("URL").fill("http://no-such-host.invalid/hook")
    await form.get_by_label("Consent purpose").fill("ads")
    await form.get_by_label("tier changes").check()
    await form.get_by_role("button", name="Define destination").click()
    url = form.get_by_label("URL")
    await expect(url).to_have_attribute("aria-invalid", "true")
    await expect(form.locator("#" + (await url.get_attribute("id") or "") + "-error")).to_contain_text(
        "does not resolve"
    )
    assert await form.locator("[data-secret]").count() == 0


@pytest.mark.parametrize("size", SIZES)
async def test_the_destinations_page_keeps_its_content_inside_its_cards(
    console: Console, receiver: Receiver, size: str
) -> None:
    page = console.page
    await page.set_viewport_size(SIZES[size])
    await log_in(console)
    await define(page, receiver)
    shopper_opts_in(console, "layout@example.com")
    await open_with_dead_letter(page)
    second: dict[str, Any] = {
        "id": "ads-frequent-returners",
        "name": "Google Ads: frequent returners (excluded from campaigns)",
        "url": receiver.url,
        "send": {"segments": ["frequent-returners"]},
        "consentPurpose": "ads",
        "hashIdentifiers": True,
    }
    created = call(
        console.base,
        "mutation($i: DestinationInput!) { createDestination(input: $i) { __typename } }",
        {"i": second},
    )
    assert created["createDestination"]["__typename"] == "DestinationCreated", created
    await page.locator("section[aria-labelledby=d-detail]").get_by_role("button", name="Refresh").click()
    await expect(page.get_by_role("button", name="Open Google Ads: frequent returners")).to_be_visible()
    await console.assert_laid_out()
    suffix = "" if size == "wide" else "-phone"
    await console.screenshot(f"console-destinations{suffix}.png", full_page=True)
    await console.assert_stayed_home()

"""The console's layout in a real browser, at 1280x900 and 390 wide, on a shop with realistic
data: no element runs past its card, the document never scrolls sideways, and every label sits
next to its control. Layout invariants, not pixels; with PROFILEGATE_SCREENSHOTS=1 these tests
write the console's screenshots in docs/screenshots."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from profilegate.settings import Settings
from tests.browser.conftest import PHONE, WIDE, Console
from tests.browser.test_console import ANN, call, log_in
from tests.gateway import ADMIN_KEY

pytestmark = pytest.mark.browser
POLICY = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "tier_policy.json").read_text())
ANN_REF = {"identity": {"type": "EMAIL", "value": ANN}}
SEGMENTS = [
    (
        "big-spenders-dach",
        "Big spenders in the German-speaking countries (DE, AT, CH), last 365 days",
        'net_spend(last 365d) > 1000.00 and traits.country in ["DE", "AT", "CH"]',
    ),
    ("repeat-buyers", "Repeat buyers", "orders(last 365d) >= 2"),
    ("store-regulars", "Store regulars", 'traits.favouriteStore in ["Berlin Mitte", "Wien 1"]'),
]
SIZES = {"wide": WIDE, "phone": PHONE}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"shop_time_zone": "Europe/Berlin"})


def track(base: str, events: list[dict[str, Any]]) -> None:
    response = httpx.post(
        f"{base}/v1/track", json={"events": events}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.json()["accepted"] == len(events), response.json()


def purchase(event_id: str, email: str, at: str, total: str, channel: str = "web") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at,
        "channel": channel,
        "identity": {"type": "EMAIL", "value": email},
        "properties": {
            "orderId": f"o-{event_id}",
            "total": total,
            "currency": "EUR",
            "items": [{"sku": "COAT-1", "category": "coats", "price": total, "quantity": 1}],
        },
    }


def visit(event_id: str, email: str, at: str, channel: str = "web") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "page_view",
        "at": at,
        "channel": channel,
        "identity": {"type": "EMAIL", "value": email},
        "properties": {"url": "https://shop.example/coats"},
    }


def seed_realistic_shop(base: str) -> None:
    """Customers with orders on three channels over a year, extensions, segments with long
    names and two tier policy versions (the fixture active, a cheaper one not)."""
    for name, description in [
        ("vip-care", "Personal service by the store team"),
        ("no-reward", "No loyalty tier"),
        ("employee", "Staff: GOLD whatever they spend"),
        ("status-match-gold", "Status match from a partner programme"),
    ]:
        call(
            base,
            "mutation($i: DefineExtensionInput!) { defineExtension(input: $i) { __typename } }",
            {"i": {"name": name, "description": description}},
        )
    upsert = "mutation($input: UpsertProfileInput!) { upsertProfile(input: $input) { __typename } }"
    people = [
        (
            ANN,
            {
                "country": "DE",
                "firstName": "Ann",
                "lastName": "Schmidt-Lindqvist",
                "favouriteStore": "Berlin Mitte",
                "sizes": ["M", "38"],
                "preferences": {"newsletter": "weekly", "colours": ["navy", "sand"]},
                "loyaltyCardIssued": True,
                "householdSize": 3,
            },
        ),
        ("bo@example.com", {"country": "AT", "firstName": "Bo", "favouriteStore": "Wien 1"}),
        ("cy@example.com", {"country": "FR", "firstName": "Cy"}),
    ]
    for email, traits in people:
        call(
            base,
            upsert,
            {"input": {"ref": {"identity": {"type": "EMAIL", "value": email}}, "traits": traits}},
        )
    events = [
        purchase("a1", ANN, "2026-02-14T17:20:00Z", "1249.90"),
        purchase("a2", ANN, "2026-06-03T09:05:00Z", "389.00", "store"),
        purchase("a3", ANN, "2026-09-27T22:40:00Z", "2180.50", "app"),  # 28 Sep in Berlin
        purchase("a4", ANN, "2026-11-18T23:30:00Z", "74.95"),  # 19 Nov in Berlin
        purchase("b1", "bo@example.com", "2026-11-02T10:00:00Z", "1520.00", "store"),
        purchase("b2", "bo@example.com", "2026-11-12T15:00:00Z", "99.00"),
        purchase("c1", "cy@example.com", "2026-11-09T12:00:00Z", "45.00", "app"),
    ]
    events += [visit(f"v{day}", ANN, f"2026-11-{day:02d}T08:00:00Z") for day in range(1, 20, 2)]
    events += [
        visit(f"w{day}", "cy@example.com", f"2026-11-{day:02d}T19:00:00Z", "app") for day in range(4, 20, 3)
    ]
    track(base, events)
    call(
        base,
        'mutation($r: ProfileRef!) { setExtension(ref: $r, name: "vip-care", '
        'reason: "complained twice about late deliveries") { __typename } }',
        {"r": ANN_REF},
    )
    call(
        base,
        'mutation($r: ProfileRef!) { setExtension(ref: $r, name: "employee", '
        'reason: "works at Berlin Mitte") { __typename } }',
        {"r": ANN_REF},
    )
    for key, name, rule in SEGMENTS:
        saved = call(
            base,
            "mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { __typename } }",
            {"i": {"key": key, "name": name, "rule": rule}},
        )
        assert saved["saveSegment"]["__typename"] == "SegmentSaved", saved
    publish = (
        "mutation($p: TierPolicyInput!, $a: Boolean!) "
        "{ publishTierPolicy(policy: $p, activate: $a) { __typename } }"
    )
    call(base, publish, {"p": POLICY, "a": True})
    cheaper = POLICY | {
        "tiers": [POLICY["tiers"][0], POLICY["tiers"][1] | {"threshold": "200.00"}, *POLICY["tiers"][2:]]
    }
    call(base, publish, {"p": cheaper, "a": False})


async def find_ann(page: Page) -> None:
    await page.get_by_label("Find by").select_option("EMAIL")
    await page.get_by_label("Value").fill(ANN)
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("region", name="At a glance")).to_be_visible()


async def open_customer(console: Console) -> None:
    await find_ann(console.page)
    await console.page.get_by_role("button", name="Explain").click()
    await expect(console.page.locator(".explain li").first).to_be_visible()


async def open_segment_editor(console: Console) -> None:
    page = console.page
    await page.get_by_role("link", name="Segments").click()
    await page.get_by_role("button", name=SEGMENTS[0][1]).click()
    await expect(page.locator("[data-preview-size]")).to_be_visible()
    rule = page.get_by_label("Rule", exact=True)
    await rule.press("Control+End")
    await rule.press_sequentially(
        '\nand not has_extension("employee") and traits.favouriteStore in ["Wien 1"] and net_spnd > 5'
    )
    await expect(page.locator(".marker")).to_have_attribute("data-line", "2")
    shown = await page.locator(".marker .code:not(.caret)").text_content()
    caret = await page.locator(".marker .caret").text_content()
    assert shown is not None
    assert caret is not None
    assert shown.startswith("…")  # a long line is shown around the column, the caret under it
    assert shown.index("net_spnd") == len(caret) - 1


async def open_loyalty(console: Console) -> None:
    page = console.page
    await page.get_by_role("link", name="Loyalty").click()
    await expect(page.get_by_role("button", name="Activate 2")).to_be_visible()


async def open_metrics(console: Console) -> None:
    page = console.page
    await page.get_by_role("link", name="Shop metrics").click()
    form = page.get_by_role("form", name="Shop metrics range")
    await form.get_by_label("From").fill("2026-11-01")
    await form.get_by_label("To").fill("2026-11-20")
    await form.get_by_role("button", name="Show metrics").click()
    await expect(page.locator('svg[data-chart="revenue"]')).to_be_visible()


PAGES = {
    "customer": open_customer,
    "segment-editor": open_segment_editor,
    "loyalty": open_loyalty,
    "metrics": open_metrics,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PAGES)
async def test_every_page_keeps_its_content_inside_its_cards_and_labels_by_their_inputs(
    console: Console, name: str, size: str
) -> None:
    seed_realistic_shop(console.base)
    page = console.page
    await page.set_viewport_size(SIZES[size])
    await log_in(console)
    await PAGES[name](console)
    await console.assert_laid_out()
    suffix = "" if size == "wide" else "-phone"
    await console.screenshot(f"console-{name}{suffix}.png", full_page=True)
    await console.assert_stayed_home()


@pytest.mark.parametrize("size", SIZES)
async def test_the_login_label_sits_by_its_input(console: Console, size: str) -> None:
    page = console.page
    await page.set_viewport_size(SIZES[size])
    await page.goto(f"{console.base}/admin")
    key = page.get_by_label("Admin API key")
    await expect(key).to_be_visible()
    label = await page.locator("label[for=key]").bounding_box()
    field = await key.bounding_box()
    assert label is not None
    assert field is not None
    assert 0 <= field["y"] - (label["y"] + label["height"]) <= 12  # right above it
    assert abs(field["x"] - label["x"]) <= 12
    await console.assert_laid_out()

"""The console's loyalty page in a real browser: the publish form starts from the active policy
and edits all of it (tiers with their benefits, overrides, retention, return lock, measure and
window), a publish without a change is refused as unchanged, and a what-if answers in place."""

from typing import Any

import pytest
from playwright.async_api import Locator, expect

from tests.browser.conftest import Console
from tests.browser.test_console import call, log_in
from tests.browser.test_console_layout import POLICY, seed_realistic_shop

pytestmark = pytest.mark.browser
POLICIES = """{ tierPolicies { version } tierPolicy { version metric windowDays returnLockDays
  retention { kind days } note tiers { name threshold benefits { key type value } }
  overrides { extension effect tier } } }"""


def active_policy(base: str) -> dict[str, Any]:
    data = call(base, POLICIES)
    return {"versions": [p["version"] for p in data["tierPolicies"]], **data["tierPolicy"]}


async def publish_form(console: Console) -> Locator:
    page = console.page
    await log_in(console)
    await page.get_by_role("link", name="Loyalty").click()
    await expect(page.get_by_role("button", name="Activate 2")).to_be_visible()
    return page.get_by_role("form", name="Publish a tier policy")


async def test_the_form_starts_from_the_active_policy_and_an_unchanged_one_is_refused(
    console: Console,
) -> None:
    seed_realistic_shop(console.base)  # version 1 active, version 2 (cheaper SILVER) not
    form = await publish_form(console)
    await expect(form.get_by_role("heading")).to_have_text("Publish a new version (from version 1)")
    tiers = form.get_by_label("Tiers, one per line")
    await expect(tiers).to_have_value(
        "MEMBER 0 free_shipping=false discount_percent=0\n"
        "SILVER 250.00 free_shipping=false discount_percent=2 birthday_voucher=10.0\n"
        "GOLD 1000.00 free_shipping=true discount_percent=5 birthday_voucher=20.0 early_access=true\n"
        "PLATINUM 3000.00 free_shipping=true discount_percent=10 birthday_voucher=50.0 early_access=true "
        'service_line="platinum"'
    )
    await expect(form.get_by_label("Overrides by extension")).to_have_value(
        "no-reward NO_TIER\nemployee FIXED_TIER GOLD\nstatus-match-gold FLOOR GOLD"
    )
    await expect(form.get_by_label("Return lock (days)")).to_have_value("30")
    await expect(form.get_by_label("Retention", exact=True)).to_have_value("END_OF_NEXT_YEAR")
    await expect(form.get_by_label("Note")).to_have_value(POLICY["note"])
    before = active_policy(console.base)
    await form.get_by_role("button", name="Publish and activate").click()
    await expect(form.get_by_role("alert")).to_have_text(
        "the policy is unchanged: it is the same as version 1, the active policy"
    )
    assert active_policy(console.base) == before  # nothing published
    await console.assert_stayed_home()


async def test_publishing_an_edit_keeps_every_benefit_override_and_setting_it_did_not_touch(
    console: Console,
) -> None:
    seed_realistic_shop(console.base)
    form = await publish_form(console)
    before = active_policy(console.base)
    tiers = form.get_by_label("Tiers, one per line")
    text = await tiers.input_value()
    await tiers.fill(text.replace("GOLD 1000.00", "GOLD 900.00"))
    overrides = form.get_by_label("Overrides by extension")
    await overrides.fill(await overrides.input_value() + "\nvip-care FLOOR SILVER")
    await form.get_by_role("button", name="Publish and activate").click()
    await expect(form.get_by_role("status")).to_have_text("Published and activated version 3")
    after = active_policy(console.base)
    assert after["versions"] == [1, 2, 3]
    assert after["tiers"][2]["threshold"] == "900.00"
    assert after["tiers"][:2] + after["tiers"][3:] == before["tiers"][:2] + before["tiers"][3:]
    assert after["tiers"][2]["benefits"] == before["tiers"][2]["benefits"]  # decimals stay decimals
    assert after["overrides"] == [
        *before["overrides"],
        {"extension": "vip-care", "effect": "FLOOR", "tier": "SILVER"},
    ]
    unchanged = ("metric", "windowDays", "returnLockDays", "retention", "note")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    await expect(form.get_by_role("heading")).to_have_text("Publish a new version (from version 3)")
    await expect(form.get_by_label("Overrides by extension")).to_have_value(
        "no-reward NO_TIER\nemployee FIXED_TIER GOLD\nstatus-match-gold FLOOR GOLD\nvip-care FLOOR SILVER"
    )
    await console.assert_stayed_home()


async def test_a_republished_latest_version_is_refused_and_the_form_names_it(console: Console) -> None:
    seed_realistic_shop(console.base)
    form = await publish_form(console)
    tiers = form.get_by_label("Tiers, one per line")
    await tiers.fill((await tiers.input_value()).replace("SILVER 250.00", "SILVER 200.00"))  # version 2
    await form.get_by_role("button", name="Publish and activate").click()
    await expect(form.get_by_role("alert")).to_contain_text("the same as version 2")
    await expect(form.get_by_role("alert")).to_contain_text("activate version 2 instead")
    await tiers.fill("MEMBER 0 free_shipping=maybe")
    await form.get_by_role("button", name="Publish and activate").click()
    await expect(form.get_by_role("alert")).to_contain_text(
        'line 1: free_shipping=maybe is not true, false, a number or a "text in quotes"'
    )
    await expect(tiers).to_have_attribute("aria-invalid", "true")
    assert active_policy(console.base)["versions"] == [1, 2]
    await console.assert_stayed_home()


async def test_the_what_if_answers_in_its_card(console: Console) -> None:
    seed_realistic_shop(console.base)
    await publish_form(console)
    what_if = console.page.get_by_role("form", name="What-if for a profile")
    await what_if.get_by_label("Customer e-mail").fill("cy@example.com")
    await what_if.get_by_label("Cart total").fill("1200.00")
    await what_if.get_by_role("button", name="What if").click()
    await expect(what_if.get_by_role("status")).to_contain_text("GOLD")
    await console.assert_laid_out()
    await console.assert_stayed_home()

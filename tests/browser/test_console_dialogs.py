"""The console's confirmations in a real browser: in-page dialogs, named and described, that take
the focus, ask for the reason the API records, close on Escape doing nothing, and give the focus
back to the button that opened them."""

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.test_console import ANN, call, log_in, seed_shop

pytestmark = pytest.mark.browser
ANN_REF = {"identity": {"type": "EMAIL", "value": ANN}}
PROFILE = "query($ref: ProfileRef!) { profile(ref: $ref) { id extensions { name } } }"


def set_vip_care(base: str) -> None:
    call(
        base,
        'mutation($ref: ProfileRef!) { setExtension(ref: $ref, name: "vip-care", reason: "complained") '
        "{ __typename } }",
        {"ref": ANN_REF},
    )


async def find_ann(page: Page) -> None:
    await page.get_by_label("Find by").select_option("EMAIL")
    await page.get_by_label("Value").fill(ANN)
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_label("Traits").locator("dd", has_text="Ann")).to_be_visible()


async def test_removing_an_extension_asks_for_the_reason_in_a_dialog(console: Console) -> None:
    seed_shop(console.base)
    set_vip_care(console.base)
    page = console.page
    await log_in(console)
    await find_ann(page)
    remove = page.get_by_role("button", name="Remove vip-care")
    await remove.click()
    dialog = page.get_by_role("dialog", name="Remove vip-care")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_have_accessible_description(
        "The profile loses the extension vip-care; the reason is kept in the audit log."
    )
    reason = dialog.get_by_label("Reason for removing it")
    await expect(reason).to_be_focused()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await expect(remove).to_be_focused()
    await remove.click()
    await dialog.get_by_role("button", name="Remove vip-care").click()  # no reason yet
    await expect(dialog.get_by_role("alert")).to_contain_text("give a reason")
    await reason.fill("   ")
    await dialog.get_by_role("button", name="Remove vip-care").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("give a reason")
    await expect(reason).to_have_attribute("aria-invalid", "true")
    assert call(console.base, PROFILE, {"ref": ANN_REF})["profile"]["extensions"] == [{"name": "vip-care"}]
    await reason.fill("resolved by phone")
    await dialog.get_by_role("button", name="Remove vip-care").click()
    await expect(page.get_by_text("No extension in force.")).to_be_visible()
    assert call(console.base, PROFILE, {"ref": ANN_REF})["profile"]["extensions"] == []
    await console.assert_stayed_home()


async def test_erasing_a_profile_is_confirmed_with_a_reason_and_escape_erases_nothing(
    console: Console,
) -> None:
    seed_shop(console.base)
    page = console.page
    await log_in(console)
    await find_ann(page)
    erase = page.get_by_role("button", name="Erase (GDPR art. 17)")
    await erase.click()
    dialog = page.get_by_role("dialog", name="Erase this profile")
    await expect(dialog).to_contain_text("cannot be undone")
    reason = dialog.get_by_label("Reason for the erasure")
    await expect(reason).to_be_focused()
    await reason.fill("request 4711")
    await console.screenshot("console-erase-dialog.png")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(erase).to_be_focused()
    assert call(console.base, PROFILE, {"ref": ANN_REF})["profile"] is not None  # nothing erased
    await erase.click()
    await expect(reason).to_have_value("")  # a new dialog, not the one cancelled
    await reason.fill("request 4711")
    await dialog.get_by_role("button", name="Erase profile").click()
    await expect(page.get_by_role("status").filter(has_text="Erased: 1 profile(s)")).to_be_visible()
    assert call(console.base, PROFILE, {"ref": ANN_REF})["profile"] is None
    await console.assert_stayed_home()


async def test_deleting_a_segment_is_confirmed_in_a_dialog_whose_focus_starts_on_cancel(
    console: Console,
) -> None:
    seed_shop(console.base)
    saved = call(
        console.base,
        "mutation($input: SaveSegmentInput!) { saveSegment(input: $input) { __typename } }",
        {"input": {"key": "austrians", "name": "Austrians", "rule": 'traits.country in ["AT"]'}},
    )
    assert saved["saveSegment"]["__typename"] == "SegmentSaved"
    page = console.page
    await log_in(console)
    await page.get_by_role("link", name="Segments").click()
    await page.get_by_role("button", name="Austrians").click()
    delete = page.get_by_role("button", name="Delete segment")
    await delete.click()
    dialog = page.get_by_role("dialog", name="Delete segment austrians")
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator('[data-segment-size="austrians"]')).to_have_text("1")
    await delete.click()
    await dialog.get_by_role("button", name="Delete segment").click()
    await expect(page.get_by_text("No segment yet.")).to_be_visible()
    await console.assert_stayed_home()

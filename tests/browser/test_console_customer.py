"""The console's customer page in a real browser: the figures a shop asks first, the tier's
reason in words, traits as a key/value view, an empty state for extensions, and numbers and
dates in the reader's locale with days and times of the shop's time zone."""

import pytest
from playwright.async_api import Page, expect

from profilegate.settings import Settings
from tests.browser.conftest import Console, Reader
from tests.browser.test_console import ANN, log_in, seed_shop
from tests.browser.test_console_layout import find_ann, seed_realistic_shop

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"shop_time_zone": "Europe/Berlin"})


async def figure(page: Page, key: str) -> str:
    return (await page.locator(f'[data-figure="{key}"] dd').inner_text()).replace("\n", " ")


async def test_the_customer_page_shows_orders_spend_last_order_channels_and_tier_in_words(
    console: Console,
) -> None:
    seed_realistic_shop(console.base)
    page = console.page
    await log_in(console)
    await find_ann(page)
    assert await figure(page, "orders") == "4 lifetime"
    assert await figure(page, "netSpend") == "3,894.35 EUR lifetime, less returns and cancellations"
    assert await figure(page, "averageOrderValueNet") == "973.59 EUR"  # 3,894.35 over 4 orders
    # 23:30 UTC on the 18th is the 19th in Berlin; the first event was on 14 February
    assert await figure(page, "lastOrder") == "19 Nov 2026 customer since 14 Feb 2026"
    assert await figure(page, "channels") == "Web 85.7% App 7.1% Store 7.1% of 14 events"
    assert (await figure(page, "tier")).startswith("GOLD fixed by the extension employee")
    tier = page.get_by_role("region", name="Tier")
    await expect(tier.locator("[data-tier-reason]")).to_have_text("GOLD — fixed by the extension employee")
    await expect(page.get_by_text("fixed_by_extension")).to_have_count(0)
    traits = page.get_by_label("Traits")
    await expect(traits.locator("dt", has_text="lastName")).to_be_visible()
    await expect(traits.locator("dd", has_text="Schmidt-Lindqvist")).to_be_visible()
    await expect(traits.locator("dd dt", has_text="newsletter")).to_be_visible()  # a nested object
    await expect(traits.locator("dd dd", has_text="navy, sand")).to_be_visible()
    await expect(page.get_by_text('"firstName"')).to_have_count(0)  # no raw JSON
    await console.assert_stayed_home()


class TestAGermanReaderInNewYork:
    @pytest.fixture
    def reader(self) -> Reader:
        return Reader(locale="de-DE", zone="America/New_York")

    async def test_a_german_reader_in_new_york_sees_german_numbers_and_the_shops_days_and_times(
        self, console: Console
    ) -> None:
        seed_realistic_shop(console.base)
        page = console.page
        await log_in(console)
        await find_ann(page)
        assert await figure(page, "netSpend") == "3.894,35 EUR lifetime, less returns and cancellations"
        assert (await figure(page, "lastOrder")).startswith("19.11.2026")  # Berlin's day, not New York's 18th
        assert (
            await figure(page, "channels") == "Web 85,7\u00a0% App 7,1\u00a0% Store 7,1\u00a0% of 14 events"
        )
        extensions = page.get_by_role("region", name="Extensions")
        # set at 10:00 UTC: 11:00 in Berlin (05:00 where the reader sits), day first in German
        await expect(extensions.get_by_role("cell", name="20. Nov. 2026, 11:00 MEZ").first).to_be_visible()
        await console.assert_stayed_home()


async def test_a_profile_without_extensions_says_so_and_explains_them(console: Console) -> None:
    seed_shop(console.base)
    page = console.page
    await log_in(console)
    await page.get_by_label("Value").fill(ANN)
    await page.get_by_role("button", name="Find").click()
    extensions = page.get_by_role("region", name="Extensions")
    await expect(extensions.get_by_text("No extension in force.")).to_be_visible()
    await expect(extensions).to_contain_text("Set one below with a reason")
    assert await figure(page, "orders") == "0 lifetime"
    assert await figure(page, "lastOrder") == "—"
    await console.assert_laid_out()
    await console.assert_stayed_home()

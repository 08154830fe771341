"""The console of a production gateway in a real browser: no link to GraphiQL, which is off."""

import pytest
from playwright.async_api import expect

from profilegate.settings import Settings
from tests.browser.conftest import Console
from tests.browser.test_console import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"env": "production"})


async def test_the_navigation_has_no_graphiql_link_in_production(console: Console) -> None:
    page = console.page
    await log_in(console)
    navigation = page.get_by_role("navigation", name="Pages")
    await expect(navigation.get_by_role("link", name="Customer")).to_be_visible()
    await expect(navigation.get_by_role("link", name="GraphiQL")).to_have_count(0)
    await expect(page.locator("#graphiql-link")).to_be_hidden()
    await console.assert_stayed_home()

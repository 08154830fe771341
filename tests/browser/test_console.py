"""The admin console in a real browser: every asset from the gateway, no request elsewhere, no
CSP violation, and the flows shop staff use."""

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.conftest import Console
from tests.gateway import ADMIN_KEY

pytestmark = pytest.mark.browser
ANN = "ann@example.com"
EDITOR = ".graphiql-query-editor .CodeMirror"


def call(base: str, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Seed the shop over the API, as its systems would."""
    response = httpx.post(
        f"{base}/graphql",
        json={"query": document, "variables": variables or {}},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    body = response.json()
    assert "errors" not in body, body
    data = body["data"]
    assert isinstance(data, dict)
    return data


def seed_shop(base: str) -> None:
    call(
        base,
        'mutation { defineExtension(input: {name: "vip-care", description: "Personal service"}) '
        "{ __typename } }",
    )
    for index, (email, country) in enumerate(
        [(ANN, "DE"), ("bo@example.com", "AT"), ("cy@example.com", "FR")]
    ):
        ref = {"identity": {"type": "EMAIL", "value": email}}
        upsert = "mutation($input: UpsertProfileInput!) { upsertProfile(input: $input) { __typename } }"
        traits = {"country": country, "firstName": email.split("@")[0].title(), "rank": index}
        assert call(base, upsert, {"input": {"ref": ref, "traits": traits}})["upsertProfile"][
            "__typename"
        ] == ("ProfileUpserted")


async def log_in(console: Console) -> None:
    page = console.page
    await page.goto(f"{console.base}/admin")
    await page.get_by_label("Admin API key").fill(ADMIN_KEY)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("Signed in as")).to_be_visible()
    assert ADMIN_KEY not in page.url


async def test_an_admin_finds_a_customer_and_sets_an_extension(console: Console) -> None:
    seed_shop(console.base)
    page = console.page
    await log_in(console)
    await page.get_by_label("Find by").select_option("EMAIL")
    await page.get_by_label("Value").fill(ANN)
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_label("Traits").locator("dd", has_text="Ann")).to_be_visible()
    await expect(page.get_by_text("No extension in force.")).to_be_visible()
    form = page.get_by_role("form", name="Set an extension")
    await form.get_by_label("Extension").select_option("vip-care")
    await form.get_by_label("Reason").fill("complained twice")
    await form.get_by_role("button", name="Set extension").click()
    extensions = page.get_by_role("region", name="Extensions")
    await expect(extensions.get_by_role("cell", name="complained twice")).to_be_visible()
    await expect(extensions.get_by_role("button", name="Remove vip-care")).to_be_visible()
    await console.assert_stayed_home()


async def test_a_rule_error_is_marked_at_its_line_and_column_and_the_fixed_rule_previews(
    console: Console,
) -> None:
    seed_shop(console.base)
    page = console.page
    await log_in(console)
    await page.get_by_role("link", name="Segments").click()
    await expect(page.get_by_text("No segment yet.")).to_be_visible()
    rule = page.get_by_label("Rule", exact=True)
    await page.get_by_label("Key", exact=True).fill("german-speaking")
    await page.get_by_label("Name", exact=True).fill("German-speaking")
    await rule.press_sequentially('traits.country in ["DE", "AT"]\nand net_spnd > 5')
    marker = page.locator(".marker")
    await expect(marker).to_have_attribute("data-line", "2")
    await expect(marker).to_have_attribute("data-column", "5")
    await expect(marker).to_contain_text("net_spnd")
    await expect(rule).to_have_attribute("aria-invalid", "true")
    await rule.fill('traits.country in ["DE", "AT"]')
    await rule.press("End")  # the editor checks on input
    await rule.press_sequentially(" ")
    await expect(page.locator("[data-preview-size]")).to_have_attribute("data-preview-size", "2")
    await expect(page.get_by_text("bo@example.com")).to_be_visible()
    await page.get_by_role("button", name="Save segment").click()
    await expect(page.locator('[data-segment-size="german-speaking"]')).to_have_text("2")
    await console.assert_stayed_home()


async def test_publishing_a_tier_policy_changes_the_distribution(console: Console) -> None:
    seed_shop(console.base)
    page = console.page
    await log_in(console)
    await page.get_by_role("link", name="Loyalty").click()
    await expect(page.get_by_text("No tier policy is published yet")).to_be_visible()
    form = page.get_by_role("form", name="Publish a tier policy")
    await form.get_by_label("Tiers, one per line").fill("BRONZE 0\nGOLD 100")
    await form.get_by_role("button", name="Publish and activate").click()
    chart = page.get_by_role("region", name="Tier distribution")
    await expect(chart.get_by_role("img", name="BRONZE: 3")).to_be_visible()
    await expect(chart).to_have_attribute("data-distribution-version", "1")
    await form.get_by_label("Tiers, one per line").fill("SILVER 0\nGOLD 100")
    await form.get_by_role("button", name="Publish and activate").click()
    await expect(chart.get_by_role("img", name="SILVER: 3")).to_be_visible()
    await expect(chart).to_have_attribute("data-distribution-version", "2")
    await form.get_by_label("Tiers, one per line").fill("SILVER 10\nGOLD 100")
    await form.get_by_role("button", name="Publish and activate").click()
    await expect(form.get_by_role("alert")).to_contain_text("tiers")  # the field the API named
    await expect(chart).to_have_attribute("data-distribution-version", "2")  # nothing published
    await console.assert_stayed_home()


async def test_a_key_that_is_not_an_admin_key_is_refused(console: Console) -> None:
    created = call(
        console.base,
        'mutation { createApiKey(name: "shopfront", role: STOREFRONT) { ... on ApiKeyCreated { token } } }',
    )
    page = console.page
    await page.goto(f"{console.base}/admin")
    await page.get_by_label("Admin API key").fill(created["createApiKey"]["token"])
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not an admin key")
    await expect(page.get_by_role("navigation", name="Pages")).to_be_hidden()
    await console.assert_stayed_home()


async def test_graphiql_loads_from_the_gateway_and_runs_a_query(console: Console) -> None:
    page = console.page
    await log_in(console)  # GraphiQL sends the key the console holds in this tab
    await page.get_by_role("navigation", name="Pages").get_by_role("link", name="GraphiQL").click()
    editor = page.locator(EDITOR).first
    await expect(editor).to_be_visible()
    await page.evaluate(
        f"document.querySelector('{EDITOR}').CodeMirror.setValue('{{ viewer {{ name role }} }}')"
    )
    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    await expect(page.locator(".result-window")).to_contain_text('"role": "ADMIN"')
    await console.assert_stayed_home()


async def test_a_page_load_logs_no_console_error_and_its_icon_is_an_image(console: Console) -> None:
    """A browser asks every page for its icon (the page's rel=icon link, else /favicon.ico): a 404
    there is a console error on every load. The browser Playwright drives never asks for
    /favicon.ico itself and refuses the page's own request for that exact URL, so the page loads
    the icon as an image under a query string the gateway ignores."""
    page = console.page
    await log_in(console)
    await page.reload(wait_until="networkidle")
    await expect(page.get_by_text("Signed in as")).to_be_visible()
    size = await page.evaluate(
        "async () => { const image = new Image();"
        " image.src = `${document.querySelector('link[rel=icon]').href}?shown`;"
        " await image.decode(); return [image.naturalWidth, image.naturalHeight]; }"
    )
    assert size == [32, 32]
    assert console.console_errors == []
    await console.assert_stayed_home()


async def test_graphiql_without_a_key_asks_for_one_in_its_headers_instead_of_failing(
    console: Console,
) -> None:
    page = console.page
    await page.goto(f"{console.base}/graphql", wait_until="networkidle")
    editor = page.locator(EDITOR).first
    await expect(editor).to_contain_text("Put your API key under Headers")
    headers = page.locator(".graphiql-editor-tool .CodeMirror").last
    await expect(headers).to_contain_text('"Authorization": "Bearer <your API key>"')
    await expect(page.locator(".result-window")).not_to_contain_text("UNAUTHENTICATED")
    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    await expect(page.locator(".result-window")).to_contain_text("No API key yet: replace <your API key>")
    await page.evaluate(
        "(key) => document.querySelectorAll('.graphiql-editor-tool .CodeMirror')[1].CodeMirror"
        ".setValue(JSON.stringify({Authorization: `Bearer ${key}`}))",
        ADMIN_KEY,
    )
    await page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    await expect(page.locator(".result-window")).to_contain_text('"role": "ADMIN"')
    assert [e for e in console.console_errors if "401" in e or "UNAUTHENTICATED" in e] == []
    await console.assert_stayed_home()

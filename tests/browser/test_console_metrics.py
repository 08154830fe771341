"""The console's shop metrics page in a real browser: events tracked through /v1/track become
the range's figures, a chart per figure and a table of the periods, with nothing from elsewhere."""

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import Route, expect

from tests.api.test_shop_metrics import order, view
from tests.browser.conftest import Console
from tests.browser.test_console import call, log_in

pytestmark = pytest.mark.browser


def track(base: str, events: list[dict[str, Any]]) -> None:
    created = call(
        base, 'mutation { createApiKey(name: "shop", role: INGEST) { ... on ApiKeyCreated { token } } }'
    )
    token = created["createApiKey"]["token"]
    response = httpx.post(
        f"{base}/v1/track", json={"events": events}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.json()["accepted"] == len(events), [r for r in response.json()["results"] if r["reason"]]


def seed_three_days(base: str) -> None:
    """Three visitors over 17-19 Nov 2026 (cy in the app, the others on the web); ann and bo
    order on the 18th, ann again on the 19th, and bo returns hers on the 19th."""
    track(
        base,
        [
            view("v1", "ann", "2026-11-17T09:00:00Z"),
            view("v2", "bo", "2026-11-18T09:00:00Z"),
            view("v3", "cy", "2026-11-18T10:00:00Z", channel="app"),
            order("o1", "ann", "2026-11-18T11:00:00Z", "100.00"),
            order("o2", "bo", "2026-11-18T12:00:00Z", "50.00"),
            order("o3", "ann", "2026-11-19T08:00:00Z", "30.00"),
            {
                "id": "r1",
                "type": "order_returned",
                "at": "2026-11-19T09:00:00Z",
                "channel": "web",
                "anonymousId": "bo",
                "properties": {"orderId": "o-o2", "amount": "50.00", "currency": "EUR"},
            },
        ],
    )


async def show(console: Console, first: str, last: str, granularity: str = "DAY", channel: str = "") -> None:
    page = console.page
    form = page.get_by_role("form", name="Shop metrics range")
    await form.get_by_label("From").fill(first)
    await form.get_by_label("To").fill(last)
    await form.get_by_label("Granularity").select_option(granularity)
    await form.get_by_label("Channel").select_option(channel)
    await form.get_by_role("button", name="Show metrics").click()


async def test_tracked_events_show_as_figures_charts_and_a_table(console: Console) -> None:
    seed_three_days(console.base)
    page = console.page
    await log_in(console)
    await page.get_by_role("link", name="Shop metrics").click()
    held = asyncio.Event()

    async def hold(route: Route) -> None:
        await held.wait()
        await route.continue_()

    await page.route("**/graphql", hold)
    await show(console, "2026-11-17", "2026-11-19")
    await expect(page.get_by_role("status").filter(has_text="Loading the shop metrics")).to_be_visible()
    held.set()
    figures = {
        "visitors": "3",
        "buyers": "2",
        "orders": "3",
        "conversionRate": "66.7%",
        "revenue": "180.00 EUR",
        "averageOrderValueGross": "60.00 EUR",
        "averageOrderValueNet": "43.33 EUR",  # o2 returned whole: (100.00 + 0 + 30.00) / 3 orders
        "returnRate": "33.3%",
        "newCustomers": "2",
        "returningCustomers": "0",
    }
    for key, shown in figures.items():
        await expect(page.locator(f'[data-figure="{key}"] dd')).to_have_text(shown)
    revenue = page.locator('svg[data-chart="revenue"]')
    await expect(revenue).to_have_attribute(
        "aria-label",
        "Revenue per period from 17 Nov 2026 to 19 Nov 2026: revenue highest 150.00 EUR (18 Nov 2026)",
    )
    assert await revenue.locator(".value-tick").all_text_contents() == ["0", "50", "100", "150"]
    assert await revenue.locator(".time-tick").all_text_contents() == ["17 Nov", "18 Nov", "19 Nov"]
    bars = revenue.locator("rect")
    await expect(bars).to_have_count(3)
    assert [await bar.get_attribute("data-value") for bar in await bars.all()] == ["0", "150", "30"]
    await expect(page.locator('svg[data-chart="visitors"] rect')).to_have_count(6)  # visitors and buyers
    periods = page.get_by_role("region", name="Periods")
    await expect(periods.get_by_role("row")).to_have_count(4)
    await expect(periods.get_by_role("row", name="19 Nov 2026")).to_contain_text(
        "100.0%"
    )  # 1 return, 1 order
    await console.assert_stayed_home()


async def test_weeks_a_range_without_visitors_and_a_refused_range(console: Console) -> None:
    seed_three_days(console.base)
    page = console.page
    await log_in(console)
    await page.goto(f"{console.base}/admin#metrics")
    await show(console, "2026-11-09", "2026-11-22", "WEEK")
    await expect(page.locator('svg[data-chart="orders"] rect')).to_have_count(2)
    periods = page.get_by_role("region", name="Periods")
    await expect(periods.get_by_role("row", name="16 Nov 2026 \u2013 22 Nov 2026")).to_be_visible()
    await show(console, "2026-10-01", "2026-10-31")
    await expect(page.get_by_text("No visitor from 1 Oct 2026 to 31 Oct 2026.")).to_be_visible()
    await show(console, "2026-11-17", "2026-11-19", channel="APP")
    await expect(page.locator('[data-figure="visitors"] dd')).to_have_text("1")
    await expect(page.locator('[data-figure="conversionRate"] dd')).to_have_text("0.0%")
    await expect(page.locator('[data-figure="averageOrderValueGross"] dd')).to_have_text("—")  # no order
    await expect(page.locator('[data-figure="averageOrderValueNet"] dd')).to_have_text("—")
    await show(console, "2026-11-17", "2026-11-19", channel="WEB")
    await expect(page.locator('[data-figure="visitors"] dd')).to_have_text("2")
    await show(console, "2026-11-19", "2026-11-17")
    to = page.get_by_label("To")
    await expect(to).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("lies before from")
    await console.assert_stayed_home()


async def test_chart_axes_have_round_steps_separators_and_spaced_days(console: Console) -> None:
    """Twenty days of orders up to 2,480.00 EUR a day: the value axis steps by 1,000 with the
    locale's separators, the time axis labels days spread over the range, the first and last."""
    events = [
        order(f"o{day}", f"c{day}", f"2026-11-{day:02d}T08:00:00Z", f"{day * 124}.00") for day in range(1, 21)
    ]
    track(console.base, events)
    page = console.page
    await log_in(console)
    await page.goto(f"{console.base}/admin#metrics")
    await show(console, "2026-11-01", "2026-11-20")
    revenue = page.locator('svg[data-chart="revenue"]')
    await expect(revenue.locator("rect")).to_have_count(20)
    assert await revenue.locator(".value-tick").all_text_contents() == ["0", "1,000", "2,000", "3,000"]
    days = await revenue.locator(".time-tick").all_text_contents()
    assert (days[0], days[-1]) == ("1 Nov", "20 Nov")
    assert 4 <= len(days) <= 8, days
    orders = page.locator('svg[data-chart="orders"]')
    assert await orders.locator(".value-tick").all_text_contents() == [
        "0",
        "1",
    ]  # counts step by whole numbers
    await expect(page.locator('[data-figure="revenue"] dd')).to_have_text("26,040.00 EUR")
    await console.assert_laid_out()
    await console.assert_stayed_home()

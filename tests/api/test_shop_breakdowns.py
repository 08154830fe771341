"""``shopMetrics`` breakdowns: orders by last-touch traffic source, top products, payment methods."""

from decimal import Decimal
from typing import Any

import pytest

from profilegate.settings import Settings
from tests.api.test_shop_metrics import track, view
from tests.gateway import GatewayClient

BREAKDOWNS = """
query($first: Int!) {
  shopMetrics(from: "2026-11-19", to: "2026-11-19", granularity: DAY) {
    total {
      bySource { source medium visitors orders revenue { amount } }
      topProducts(first: $first) { sku units revenue { amount } }
      paymentMethods { method orders revenue { amount } }
    }
  }
}
"""


def order(
    event_id: str, who: str, at: str, lines: list[tuple[str, int, str]], **extra: Any
) -> dict[str, Any]:
    total = sum(int(price) * quantity for _, quantity, price in lines)
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at,
        "channel": "web",
        "anonymousId": who,
        "properties": {
            "orderId": f"o-{event_id}",
            "total": f"{total}.00",
            "currency": "EUR",
            "items": [{"sku": sku, "quantity": quantity, "price": price} for sku, quantity, price in lines],
            **extra,
        },
    }


def touched(event_id: str, who: str, at: str, **properties: str) -> dict[str, Any]:
    return {**view(event_id, who, at), "properties": {"url": "https://shop.example/", **properties}}


async def test_orders_count_for_the_buyers_last_touch_and_products_and_payments_add_up(
    gateway: GatewayClient,
) -> None:
    await track(
        gateway,
        [
            touched("t1", "a", "2026-11-19T10:00:00Z", utmSource="Newsletter", utmMedium="email"),
            order(
                "o1", "a", "2026-11-19T10:30:00Z", [("A1", 2, "10"), ("B2", 1, "30")], paymentMethod="card"
            ),
            touched("t2", "a", "2026-11-19T11:30:00Z", referrer="https://www.google.com/search?q=shoes"),
            touched("t3", "b", "2026-11-19T11:00:00Z", referrer="https://www.google.com/"),
            order("o2", "b", "2026-11-19T11:10:00Z", [("A1", 1, "20")], paymentMethod="PayPal"),
            order("o3", "c", "2026-11-19T12:00:00Z", [("C3", 5, "2")]),
            touched("t4", "d", "2026-11-19T12:00:00Z", utm_source="newsletter", utm_medium="email"),
        ],
    )

    found = (await gateway.execute(BREAKDOWNS, {"first": 2})).data["shopMetrics"]["total"]

    assert found["bySource"] == [
        {
            "source": "newsletter",
            "medium": "email",
            "visitors": 2,
            "orders": 1,
            "revenue": {"amount": "50.00"},
        },
        {
            "source": "www.google.com",
            "medium": "referral",
            "visitors": 2,
            "orders": 1,
            "revenue": {"amount": "20.00"},
        },
        {
            "source": "(direct)",
            "medium": "(none)",
            "visitors": 0,
            "orders": 1,
            "revenue": {"amount": "10.00"},
        },
    ]
    assert found["topProducts"] == [
        {"sku": "C3", "units": 5, "revenue": {"amount": "10.00"}},
        {"sku": "A1", "units": 3, "revenue": {"amount": "40.00"}},
    ]
    assert found["paymentMethods"] == [
        {"method": "card", "orders": 1, "revenue": {"amount": "50.00"}},
        {"method": "paypal", "orders": 1, "revenue": {"amount": "20.00"}},
        {"method": None, "orders": 1, "revenue": {"amount": "10.00"}},
    ]


async def test_more_top_products_than_the_limit_are_refused_naming_first(gateway: GatewayClient) -> None:
    result = await gateway.execute(BREAKDOWNS, {"first": 101})

    assert result.error_codes == ["BAD_USER_INPUT"]
    assert result.body["errors"][0]["extensions"]["field"] == "first"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"currency_rates": {"CHF": Decimal("1.05")}})


def shipped(event_id: str, who: str, currency: str, total: str, **properties: Any) -> dict[str, Any]:
    placed = order(event_id, who, "2026-11-19T10:00:00Z", [])
    placed["properties"] |= {"total": total, "currency": currency, "shipping": "4.95", **properties}
    return placed


async def test_products_keep_the_shops_sku_and_count_line_revenue_without_shipping(
    gateway: GatewayClient,
) -> None:
    socks = {"sku": "SO-3PK", "quantity": 1, "price": "12.50"}
    shirt = {"sku": "TS-ORG-M", "quantity": 2, "price": "24.90", "discount": "4.90"}
    await track(
        gateway,
        [
            # 12.50 + 49.80 - 4.90 (the shirts' discount, part of the order's) + 4.95 shipping
            shipped("o1", "a", "EUR", "62.35", items=[socks, shirt], discount="4.90"),
            # 12.50 CHF + 4.95 CHF shipping = 17.45 CHF, 18.32 EUR at 1.05: the socks 12.50 x
            # 18.32 / 17.45 = 13.12 EUR
            shipped("o2", "b", "CHF", "17.45", items=[socks]),
        ],
    )

    found = (await gateway.execute(BREAKDOWNS, {"first": 10})).data["shopMetrics"]["total"]

    assert found["topProducts"] == [
        {"sku": "TS-ORG-M", "units": 2, "revenue": {"amount": "44.90"}},
        {"sku": "SO-3PK", "units": 2, "revenue": {"amount": "25.62"}},
    ]
    assert [row["revenue"]["amount"] for row in found["paymentMethods"]] == ["80.67"]  # the orders' totals

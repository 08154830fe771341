"""Orders are the unit of truth (issue 23), through ``POST /v1/track``: a return over what is
left of its order, a return of an order that never existed and an order sent again under a new
event id are refused with the reason; the profile's metrics, its loyalty metric, the shop's
metrics and what ``rebuild-aggregates`` makes of the log agree, and none is negative."""

from typing import Any

from profilegate.service.rebuild import rebuild_aggregates
from profilegate.service.shop_metrics import rebuild_shop_days
from profilegate.settings import Settings
from profilegate.storage.store import Repositories
from tests.api.test_loyalty import LOYALTY, publish_default
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient

DANA = {"type": "EMAIL", "value": "dana@example.com"}
PROFILE = """
query($ref: ProfileRef!) {
  profile(ref: $ref) {
    metrics {
      orders grossSpend { amount } netSpend { amount } year: netSpend(days: 365) { amount }
      averageOrderValue { amount } returnRate
    }
  }
}
"""
SHOP = """
query {
  shopMetrics(from: "2026-11-01", to: "2026-11-20", granularity: MONTH) {
    total { orders revenue { amount } returned { amount } netRevenue { amount } returns returnRate }
  }
}
"""


def tracked(event_id: str, kind: str, at: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "at": at,
        "channel": "web",
        "identity": DANA,
        "properties": properties,
    }


def placed(event_id: str, total: str, at: str = "2026-11-10T09:00:00Z") -> dict[str, Any]:
    items = [{"sku": "COAT-1", "category": "coats", "price": total, "quantity": 1}]
    return tracked(
        event_id, "order_completed", at, orderId="D-5001", total=total, currency="EUR", items=items
    )


def returned(event_id: str, order_id: str, amount: str, at: str = "2026-11-15T09:00:00Z") -> dict[str, Any]:
    return tracked(event_id, "order_returned", at, orderId=order_id, amount=amount)


async def track(gateway: GatewayClient, *events: dict[str, Any]) -> list[dict[str, Any]]:
    response = await gateway.http.post(
        "/v1/track", json={"events": list(events)}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.status_code == 200
    return list(response.json()["results"])


async def figures(gateway: GatewayClient) -> dict[str, Any]:
    """The net figures of every place that shows them."""
    metrics = (await gateway.execute(PROFILE, {"ref": {"identity": DANA}})).data["profile"]["metrics"]
    loyalty = (await gateway.execute(LOYALTY, {"ref": {"identity": DANA}})).data["loyalty"]["metric"]
    shop = (await gateway.execute(SHOP)).data["shopMetrics"]["total"]
    return {
        "orders": (metrics["orders"], shop["orders"]),
        "gross": (metrics["grossSpend"]["amount"], shop["revenue"]["amount"]),
        "net": (
            metrics["netSpend"]["amount"],
            metrics["year"]["amount"],
            shop["netRevenue"]["amount"],
        ),
        "loyalty": (loyalty["netSpend"]["amount"], loyalty["pending"]["amount"]),
        "average": (metrics["averageOrderValue"] or {}).get("amount"),
        "returns": (metrics["returnRate"], shop["returns"], shop["returned"]["amount"]),
    }


async def rebuilt(repos: Repositories, clock: FrozenClock, settings: Settings) -> None:
    await rebuild_aggregates(repos, clock.now, settings.daily_retention_days)
    await repos.shop_days.clear()
    await rebuild_shop_days(repos, settings.tracking_rules.shop)


EXPECTED = {
    "orders": (1, 1),
    "gross": ("139.76", "139.76"),
    "net": ("119.86", "119.86", "119.86"),
    "loyalty": ("0.00", "119.86"),  # inside its 30-day return window: pending
    "average": "119.86",
    "returns": (1.0, 1, "19.90"),
}


async def test_returns_over_their_order_or_of_no_order_are_refused_and_every_figure_agrees(
    gateway: GatewayClient, repos: Repositories, clock: FrozenClock, settings: Settings
) -> None:
    await publish_default(gateway)
    assert [r["status"] for r in await track(gateway, placed("d1-order-5001", "139.76"))] == ["accepted"]
    assert [r["status"] for r in await track(gateway, returned("d1-return-1", "D-5001", "19.90"))] == [
        "accepted"
    ]

    results = await track(
        gateway,
        returned("d1-return-2", "D-5001", "500.00"),
        returned("d1-return-3", "NOPE-1", "500.00"),
    )

    assert results == [
        {
            "id": "d1-return-2",
            "status": "rejected",
            "reason": "properties.amount: the return of 500.00 EUR exceeds the 119.86 EUR left "
            "of order D-5001 (139.76 EUR)",
        },
        {
            "id": "d1-return-3",
            "status": "rejected",
            "reason": "properties.orderId: no order NOPE-1 is known for this customer: "
            "a return or cancellation follows its order_completed",
        },
    ]
    assert await figures(gateway) == EXPECTED
    await rebuilt(repos, clock, settings)
    assert await figures(gateway) == EXPECTED


async def test_an_order_sent_again_under_a_new_event_id_is_refused_naming_the_first(
    gateway: GatewayClient, repos: Repositories, clock: FrozenClock, settings: Settings
) -> None:
    await publish_default(gateway)
    await track(gateway, placed("d1-order-5001", "139.76"), returned("d1-return-1", "D-5001", "19.90"))

    results = await track(gateway, placed("d1-order-5001-retry", "149.80", "2026-11-10T09:05:00Z"))

    assert results == [
        {
            "id": "d1-order-5001-retry",
            "status": "rejected",
            "reason": "properties.orderId: order D-5001 was counted already, as event d1-order-5001",
        }
    ]
    assert await track(gateway, placed("d1-order-5001", "139.76")) == [
        {"id": "d1-order-5001", "status": "duplicate", "reason": None}
    ]
    assert await figures(gateway) == EXPECTED
    await rebuilt(repos, clock, settings)
    assert await figures(gateway) == EXPECTED


async def test_a_cancellation_of_a_partly_returned_order_takes_what_is_left(
    gateway: GatewayClient, repos: Repositories, clock: FrozenClock, settings: Settings
) -> None:
    await publish_default(gateway)
    await track(gateway, placed("d1-order-5001", "139.76"), returned("d1-return-1", "D-5001", "19.90"))
    early = tracked("d1-cancel-0", "order_cancelled", "2026-11-14T09:00:00Z", orderId="D-5001")
    cancel = tracked("d1-cancel-1", "order_cancelled", "2026-11-16T09:00:00Z", orderId="D-5001")

    results = await track(gateway, early, cancel, returned("d1-return-2", "D-5001", "1.00"))

    assert [r["status"] for r in results] == ["rejected", "accepted", "rejected"]
    assert results[0]["reason"].startswith("at: 2026-11-14T09:00:00+00:00 is before the latest return")
    assert (
        results[2]["reason"]
        == "properties.orderId: order D-5001 was cancelled: nothing of it is left to return"
    )
    cancelled = {
        **EXPECTED,
        "net": ("0.00", "0.00", "119.86"),  # the shop shows cancellations beside its revenue
        "loyalty": ("0.00", "0.00"),
        "average": None,
    }
    assert await figures(gateway) == cancelled
    await rebuilt(repos, clock, settings)
    assert await figures(gateway) == cancelled


AVERAGES = """
query($ref: ProfileRef!) {
  profile(ref: $ref) { metrics { averageOrderValueGross { amount } averageOrderValueNet { amount } } }
  shopMetrics(from: "2026-11-01", to: "2026-11-20") {
    total { averageOrderValueGross { amount } averageOrderValueNet { amount } }
  }
}
"""


def order_of(order_id: str, total: str, at: str) -> dict[str, Any]:
    items = [{"sku": "COAT-1", "price": total, "quantity": 1}]
    return tracked(
        f"{order_id}-placed",
        "order_completed",
        at,
        orderId=order_id,
        total=total,
        currency="EUR",
        items=items,
    )


async def test_the_profile_and_the_shop_average_gross_and_net_alike(gateway: GatewayClient) -> None:
    results = await track(
        gateway,
        order_of("A", "100.00", "2026-11-02T09:00:00Z"),
        order_of("B", "60.00", "2026-11-03T09:00:00Z"),
        order_of("C", "40.00", "2026-11-04T09:00:00Z"),
        returned("B-return", "B", "20.00", "2026-11-05T09:00:00Z"),
        returned("C-return", "C", "10.00", "2026-11-05T09:00:00Z"),
        tracked("C-cancel", "order_cancelled", "2026-11-06T09:00:00Z", orderId="C"),
    )
    assert {r["status"] for r in results} == {"accepted"}

    found = (await gateway.execute(AVERAGES, {"ref": {"identity": DANA}})).data
    profile, shop = found["profile"]["metrics"], found["shopMetrics"]["total"]

    # gross: 200.00 over 3 orders; net: A 100.00 and B 60.00 - 20.00 over the 2 not cancelled
    expected = {"averageOrderValueGross": {"amount": "66.67"}, "averageOrderValueNet": {"amount": "70.00"}}
    assert profile == shop == expected

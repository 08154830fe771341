"""Raw events as shops send them to ``/v1/track``, for the service tests."""

from datetime import datetime, timedelta
from typing import Any


def email_ref(email: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": email}}


def event(
    event_id: str,
    kind: str,
    at: datetime,
    ref: dict[str, Any],
    channel: str = "web",
    **properties: Any,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "at": at.isoformat(),
        "channel": channel,
        **ref,
        "properties": properties,
    }


def order(
    event_id: str, order_id: str, total: str, at: datetime, ref: dict[str, Any], channel: str = "web"
) -> dict[str, Any]:
    items = [{"sku": "A1", "category": "shoes", "price": total, "quantity": 1}]
    return event(
        event_id,
        "order_completed",
        at,
        ref,
        channel,
        orderId=order_id,
        total=total,
        currency="EUR",
        items=items,
    )


def shopping_batch(email: str, now: datetime, prefix: str = "e") -> list[dict[str, Any]]:
    """A day of shopping, oldest first: views, a cart, two orders (one cancelled, one partly
    returned) and a late page view from last month."""
    ref = email_ref(email)
    at = now - timedelta(hours=6)
    return [
        event(f"{prefix}-late", "page_view", now - timedelta(days=30), ref, url="https://shop.example/"),
        event(f"{prefix}-v1", "product_view", at, ref, "app", sku="A1", category="shoes"),
        event(f"{prefix}-c1", "add_to_cart", at + timedelta(minutes=1), ref, sku="A1", category="shoes"),
        event(f"{prefix}-k1", "checkout_started", at + timedelta(minutes=2), ref),
        order(f"{prefix}-o1", f"{prefix}-order-1", "99.50", at + timedelta(minutes=3), ref),
        order(f"{prefix}-o2", f"{prefix}-order-2", "20.00", at + timedelta(minutes=4), ref),
        event(f"{prefix}-x2", "order_cancelled", at + timedelta(minutes=5), ref, orderId=f"{prefix}-order-2"),
        event(
            f"{prefix}-r1",
            "order_returned",
            at + timedelta(hours=2),
            ref,
            orderId=f"{prefix}-order-1",
            amount="30.00",
        ),
    ]

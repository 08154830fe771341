"""What a shop day keeps of orders and traffic sources: line revenue shares, touches, labels."""

from datetime import UTC, datetime
from typing import Any

from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.refs import ProfileRef
from profilegate.domain.shop_marks import MAX_LABEL_LENGTH, OrderLine, Touch, order_mark, touch


def tracked(kind: EventType, amount: int = 0, **properties: Any) -> TrackedEvent:
    return TrackedEvent(
        id="e1",
        type=kind,
        at=datetime(2026, 11, 19, 10, tzinfo=UTC),
        channel=Channel.WEB,
        target=ProfileRef(id="p1"),
        amount=amount,
        properties=properties,
    )


def test_a_lines_revenue_is_its_share_of_the_orders_total_with_shipping_and_discount() -> None:
    items = [{"sku": "A1", "price": "10.00", "quantity": 2}, {"sku": "B2", "price": "30.00", "quantity": 1}]
    # lines 50.00, total 55.00 (shipping 5.00): A1 holds 20/50 of it, B2 30/50
    mark = order_mark(tracked(EventType.ORDER_COMPLETED, 5500, items=items, paymentMethod=" Card "), "v", 1)

    assert mark.lines == (OrderLine("a1", 2, 2200), OrderLine("b2", 1, 3300))
    assert mark.payment_method == "card"


def test_utm_properties_win_over_the_referrer_and_labels_are_cut_to_their_limit() -> None:
    long_source = "x" * (MAX_LABEL_LENGTH + 20)
    both = tracked(EventType.PAGE_VIEW, utmSource=long_source, referrer="https://www.google.com/")

    assert touch(both, "v", 1) == Touch("v", 1, "x" * MAX_LABEL_LENGTH, "(none)")
    referred = tracked(EventType.PAGE_VIEW, referrer="https://News.Example:8080/a?b=c")
    assert touch(referred, "v", 1) == Touch("v", 1, "news.example", "referral")
    assert touch(tracked(EventType.PRODUCT_VIEW, referrer="https://a.example/"), "v", 1) is None
    assert touch(tracked(EventType.PAGE_VIEW, utmSource=""), "v", 1) is None

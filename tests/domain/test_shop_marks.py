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


def test_a_lines_revenue_is_price_times_quantity_without_shipping_and_its_sku_as_sent() -> None:
    items = [
        {"sku": "SO-3PK", "price": "10.00", "quantity": 2},
        {"sku": "b2", "price": "30.00", "quantity": 1},
    ]
    # lines 50.00, shipping 5.00: the products hold 50.00, the order 55.00
    order = tracked(
        EventType.ORDER_COMPLETED, 5500, items=items, total="55.00", currency="EUR", paymentMethod=" Card "
    )

    mark = order_mark(order, "v", 1)

    assert mark.lines == (OrderLine("SO-3PK", 2, 2000), OrderLine("b2", 1, 3000))
    assert mark.payment_method == "card"


def test_a_line_discount_is_taken_off_the_line_and_the_orders_discount_off_no_line() -> None:
    items = [
        {"sku": "A1", "price": "10.00", "quantity": 2, "discount": "4.50"},
        {"sku": "B2", "price": "30.00", "quantity": 1},
    ]
    # 50.00 - 4.50 (A1's part) - 3.00 (a coupon on the order) + 4.95 shipping
    order = tracked(EventType.ORDER_COMPLETED, 4745, items=items, total="47.45", currency="EUR")

    assert order_mark(order, "v", 1).lines == (OrderLine("A1", 2, 1550), OrderLine("B2", 1, 3000))


def test_foreign_currency_lines_are_converted_as_their_order_was() -> None:
    items = [{"sku": "A1", "price": "10.00", "quantity": 3}, {"sku": "B2", "price": "5.00", "quantity": 1}]
    # 40.00 CHF at 1.05 EUR the franc came to 42.00 EUR: 30.00 CHF of it are 31.50 EUR
    order = tracked(EventType.ORDER_COMPLETED, 4200, items=items, total="40.00", currency="CHF")

    assert order_mark(order, "v", 1).lines == (OrderLine("A1", 3, 3150), OrderLine("B2", 1, 525))


def test_an_order_of_nothing_gives_its_lines_units_but_no_revenue() -> None:
    items = [{"sku": "GIFT", "price": "10.00", "quantity": 1}]
    order = tracked(EventType.ORDER_COMPLETED, 0, items=items, total="0.00", currency="CHF")

    assert order_mark(order, "v", 1).lines == (OrderLine("GIFT", 1, 0),)


def test_utm_properties_win_over_the_referrer_and_labels_are_cut_to_their_limit() -> None:
    long_source = "x" * (MAX_LABEL_LENGTH + 20)
    both = tracked(EventType.PAGE_VIEW, utmSource=long_source, referrer="https://www.google.com/")

    assert touch(both, "v", 1) == Touch("v", 1, "x" * MAX_LABEL_LENGTH, "(none)")
    referred = tracked(EventType.PAGE_VIEW, referrer="https://News.Example:8080/a?b=c")
    assert touch(referred, "v", 1) == Touch("v", 1, "news.example", "referral")
    assert touch(tracked(EventType.PRODUCT_VIEW, referrer="https://a.example/"), "v", 1) is None
    assert touch(tracked(EventType.PAGE_VIEW, utmSource=""), "v", 1) is None

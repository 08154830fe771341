"""apply_events: what each event adds, duplicates, late events, pruning, windows, and order independence."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profilegate.domain.aggregates import (
    RECENT_EVENT_IDS,
    Aggregates,
    apply_checked,
    apply_events,
    event_digest,
    fold_events,
    merge_aggregates,
    order_key,
    order_refusals,
)
from profilegate.domain.events import (
    Channel,
    EventRules,
    EventType,
    RedeemedCoupon,
    TrackedEvent,
    parse_event,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RULES = EventRules()
RETENTION = 400
TODAY = "2026-11-20"
ANN = {"type": "EMAIL", "value": "ann@example.com"}


def raw(
    event_id: str, kind: str, days_ago: float = 0, channel: str = "web", **properties: Any
) -> dict[str, Any]:
    at = NOW - timedelta(days=days_ago)
    return {
        "id": event_id,
        "type": kind,
        "at": at.isoformat(),
        "channel": channel,
        "identity": ANN,
        "properties": properties,
    }


def order(event_id: str, order_id: str, total: str, days_ago: float = 0, **extra: Any) -> dict[str, Any]:
    items = [{"sku": "A1", "category": "shoes", "price": total, "quantity": 1}]
    return raw(
        event_id,
        "order_completed",
        days_ago,
        orderId=order_id,
        total=total,
        currency="EUR",
        items=items,
        **extra,
    )


def returned(event_id: str, order_id: str, amount: str, days_ago: float = 0) -> dict[str, Any]:
    return raw(event_id, "order_returned", days_ago, orderId=order_id, amount=amount)


def cancelled(event_id: str, order_id: str, days_ago: float = 0) -> dict[str, Any]:
    return raw(event_id, "order_cancelled", days_ago, orderId=order_id)


def parsed(raw_event: dict[str, Any]) -> TrackedEvent:
    return parse_event(raw_event, RULES, NOW)


def apply_batches(
    batches: list[list[dict[str, Any]]], retention_days: int = RETENTION
) -> tuple[Aggregates, list[list[str]]]:
    """Apply each batch in turn; the aggregates and the ids each call applied."""
    aggregates = Aggregates()
    applied_ids: list[list[str]] = []
    for batch in batches:
        aggregates, applied = apply_events(aggregates, [parsed(e) for e in batch], NOW, retention_days)
        applied_ids.append([event.id for event in applied])
    return aggregates, applied_ids


def day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def summary(aggregates: Aggregates) -> dict[str, Any]:
    """The figures a case states, with each daily bucket reduced to its non-zero fields."""
    facts = aggregates.model_dump(exclude={"daily", "order_index", "recent_event_ids"})
    facts["daily"] = {
        key: {name: value for name, value in bucket.model_dump().items() if value}
        for key, bucket in aggregates.daily.items()
    }
    facts["order_index"] = {key: entry.model_dump() for key, entry in aggregates.order_index.items()}
    return facts


@dataclass(frozen=True)
class Case:
    name: str
    batches: list[list[dict[str, Any]]]
    expected: dict[str, Any]
    retention_days: int = RETENTION
    applied: list[list[str]] | None = field(default=None)


CASES = [
    Case(
        "page view counts per type, channel and day",
        [[raw("p1", "page_view", channel="app", url="https://shop.example/")]],
        {
            "counts": {"page_view": 1},
            "channels": {"app": 1},
            "categories": {},
            "daily": {TODAY: {"counts": {"page_view": 1}}},
            "first_seen": NOW,
            "last_seen": NOW,
        },
    ),
    Case(
        "product view weighs its category once",
        [[raw("v1", "product_view", sku="A1", category="shoes")]],
        {"counts": {"product_view": 1}, "categories": {"shoes": 1}, "orders": 0},
    ),
    Case(
        "cart add weighs its category by quantity",
        [[raw("c1", "add_to_cart", sku="A1", category="shoes", quantity=3)]],
        {"counts": {"add_to_cart": 1}, "categories": {"shoes": 3}},
    ),
    Case(
        "checkout counts but spends nothing",
        [[raw("k1", "checkout_started", cartTotal="20.00", currency="EUR")]],
        {"counts": {"checkout_started": 1}, "orders": 0, "gross": 0},
    ),
    Case(
        "order adds an order, gross spend and its items' categories",
        [[order("o1", "order-1", "99.50", days_ago=2)]],
        {
            "orders": 1,
            "gross": 9950,
            "categories": {"shoes": 1},
            "last_order_at": NOW - timedelta(days=2),
            "daily": {day(2): {"counts": {"order_completed": 1}, "orders": 1, "gross": 9950}},
            "order_index": {
                order_key("order-1"): {
                    "total": 9950,
                    "day": day(2),
                    "cancelled": False,
                    "returned": 0,
                    "at": NOW - timedelta(days=2),
                    "returned_at": None,
                    "event_id": "o1",
                }
            },
        },
    ),
    Case(
        "the same order under another event id is refused: it counts once",
        [[order("o1", "order-1", "10.00"), order("o2", "order-1", "12.00")]],
        {"orders": 1, "gross": 1000, "counts": {"order_completed": 1}},
        applied=[["o1"]],
    ),
    Case(
        "the order's own event sent again is a replay, not a second order",
        [[order("o1", "order-1", "10.00")], [order("o1", "order-1", "10.00")]],
        {"orders": 1, "gross": 1000, "counts": {"order_completed": 1}},
        applied=[["o1"], []],
    ),
    Case(
        "cancellation after its order nets it out on the order's day",
        [[order("o1", "order-1", "40.00", days_ago=3)], [cancelled("x1", "order-1")]],
        {
            "orders": 1,
            "gross": 4000,
            "cancelled": 4000,
            "cancelled_orders": 1,
            "daily": {
                day(3): {"counts": {"order_completed": 1}, "orders": 1, "gross": 4000, "cancelled": 4000},
                TODAY: {"counts": {"order_cancelled": 1}},
            },
        },
    ),
    Case(
        "a cancellation that arrives before its order is refused; the order counts in full",
        [[cancelled("x1", "order-1")], [order("o1", "order-1", "40.00", days_ago=3)]],
        {"orders": 1, "gross": 4000, "cancelled": 0, "cancelled_orders": 0, "counts": {"order_completed": 1}},
        applied=[[], ["o1"]],
    ),
    Case(
        "a second cancellation of one order counts once",
        [[order("o1", "order-1", "40.00"), cancelled("x1", "order-1"), cancelled("x2", "order-1")]],
        {"cancelled": 4000, "cancelled_orders": 1},
    ),
    Case(
        "a cancellation of a partly returned order takes what is left",
        [
            [order("o1", "order-1", "100.00", days_ago=3), returned("r1", "order-1", "30.00", days_ago=2)],
            [cancelled("x1", "order-1", days_ago=1)],
        ],
        {
            "gross": 10000,
            "returned": 3000,
            "cancelled": 7000,
            "cancelled_orders": 1,
            "returned_orders": 1,
            "daily": {
                day(3): {
                    "counts": {"order_completed": 1},
                    "orders": 1,
                    "gross": 10000,
                    "cancelled": 7000,
                    "order_returns": 3000,
                },
                day(2): {"counts": {"order_returned": 1}, "returned": 3000},
                day(1): {"counts": {"order_cancelled": 1}},
            },
        },
    ),
    Case(
        "returns add up per order, on the return's day and against the order's day",
        [
            [order("o1", "order-1", "80.00", days_ago=10)],
            [returned("r1", "order-1", "20.00", days_ago=5), returned("r2", "order-1", "15.00", days_ago=1)],
        ],
        {
            "returned": 3500,
            "returned_orders": 1,
            "daily": {
                day(10): {
                    "counts": {"order_completed": 1},
                    "orders": 1,
                    "gross": 8000,
                    "order_returns": 3500,
                },
                day(5): {"counts": {"order_returned": 1}, "returned": 2000},
                day(1): {"counts": {"order_returned": 1}, "returned": 1500},
            },
        },
    ),
    Case(
        "a return that arrives before its order is refused, also earlier in the same batch",
        [[returned("r1", "order-1", "20.00"), order("o1", "order-1", "80.00", days_ago=1)]],
        {"orders": 1, "gross": 8000, "returned": 0, "returned_orders": 0},
        applied=[["o1"]],
    ),
    Case(
        "a return over what is left of its order is refused; one up to it is taken",
        [
            [order("o1", "order-1", "139.76", days_ago=2), returned("r1", "order-1", "19.90", days_ago=1)],
            [returned("r2", "order-1", "500.00"), returned("r3", "order-1", "119.86")],
            [returned("r4", "order-1", "0.01")],
        ],
        {"gross": 13976, "returned": 13976, "returned_orders": 1},
        applied=[["o1", "r1"], ["r3"], []],
    ),
    Case(
        "a return of nothing does not make the order a returned one",
        [
            [order("o1", "order-1", "10.00", days_ago=1)],
            [returned("r0", "order-1", "0")],
            [returned("r1", "order-1", "5.00")],
            [returned("r2", "order-1", "0")],
        ],
        {"returned": 500, "returned_orders": 1},
    ),
    Case(
        "a duplicate id within one call is applied once",
        [[order("o1", "order-1", "10.00"), order("o1", "order-1", "10.00"), raw("p1", "page_view")]],
        {"orders": 1, "counts": {"order_completed": 1, "page_view": 1}},
        applied=[["o1", "p1"]],
    ),
    Case(
        "a duplicate id in a later call is not applied again",
        [[order("o1", "order-1", "10.00")], [order("o1", "order-1", "10.00"), raw("p1", "page_view")]],
        {"orders": 1, "gross": 1000, "counts": {"order_completed": 1, "page_view": 1}},
        applied=[["o1"], ["p1"]],
    ),
    Case(
        "a late event lands in its own UTC day and moves first seen back",
        [[raw("p2", "page_view")], [raw("p1", "page_view", days_ago=30)]],
        {
            "first_seen": NOW - timedelta(days=30),
            "last_seen": NOW,
            "daily": {day(30): {"counts": {"page_view": 1}}, TODAY: {"counts": {"page_view": 1}}},
        },
    ),
    Case(
        "buckets and orders older than the retention are pruned; lifetime totals stay",
        [[order("o1", "order-1", "10.00", days_ago=31), order("o2", "order-2", "5.00", days_ago=30)]],
        {
            "orders": 2,
            "gross": 1500,
            "daily": {day(30): {"counts": {"order_completed": 1}, "orders": 1, "gross": 500}},
            "order_index": {
                order_key("order-2"): {
                    "total": 500,
                    "day": day(30),
                    "cancelled": False,
                    "returned": 0,
                    "at": NOW - timedelta(days=30),
                    "returned_at": None,
                    "event_id": "o2",
                }
            },
        },
        retention_days=30,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_apply_events(case: Case) -> None:
    aggregates, applied = apply_batches(case.batches, case.retention_days)
    facts = summary(aggregates)
    assert {key: facts[key] for key in case.expected} == case.expected
    if case.applied is not None:
        assert applied == case.applied


@pytest.mark.parametrize(
    ("days", "orders", "net", "views"),
    [(1, 1, 1000, 1), (6, 1, 1000, 1), (7, 2, 3000, 2), (8, 2, 3000, 2), (9, 3, 3400, 2)],
)
def test_a_window_of_n_days_ends_today_and_includes_day_n_minus_1(
    days: int, orders: int, net: int, views: int
) -> None:
    aggregates, _ = apply_batches(
        [
            [
                order("o1", "order-1", "10.00"),
                order("o2", "order-2", "20.00", days_ago=6),
                order("o3", "order-3", "4.00", days_ago=8),
                raw("v1", "product_view", sku="A"),
                raw("v2", "product_view", days_ago=6, sku="A"),
                raw("v3", "product_view", days_ago=9, sku="A"),
            ]
        ]
    )
    assert aggregates.orders_in(NOW, days) == orders
    assert aggregates.net_spend_in(NOW, days) == net
    assert aggregates.events_in(NOW, days, EventType.PRODUCT_VIEW) == views


def test_recent_ids_keep_the_last_applied() -> None:
    events = [parsed(raw(f"p{n:04d}", "page_view")) for n in range(RECENT_EVENT_IDS + 5)]
    aggregates, _ = apply_events(Aggregates(), events[:10], NOW, RETENTION)
    aggregates, _ = apply_events(aggregates, events[10:], NOW, RETENTION)
    assert aggregates.recent_event_ids == tuple(event_digest(e.id) for e in events[5:])


def test_a_fold_keeps_the_ids_newest_by_event_time() -> None:
    events = [parsed(raw(f"p{n:04d}", "page_view", days_ago=n / 24)) for n in range(RECENT_EVENT_IDS + 50)]
    shuffled = random.Random(7).sample(events, len(events))

    aggregates = fold_events(shuffled, NOW, RETENTION)

    newest = sorted(events[:RECENT_EVENT_IDS], key=lambda e: e.at)
    assert aggregates.recent_event_ids == tuple(event_digest(e.id) for e in newest)
    assert aggregates.counts == {"page_view": RECENT_EVENT_IDS + 50}


# Random event streams: orders (sent again under new ids, sometimes with another total),
# returns over and under what is left of their order, returns and cancellations dated before
# their order or arriving before it, orders that redeemed a coupon, views.
ORDER_IDS = ("order-1", "order-2", "order-3", "order-4")
KINDS = (
    "order_completed",
    "order_returned",
    "order_cancelled",
    "product_view",
    "add_to_cart",
    "checkout_started",
    "page_view",
)
CATEGORIES = ("shoes", "bags", "toys")
CHANNELS = ("web", "app", "store", "email")
MINUTES = 300 * 24 * 60
amounts = st.integers(min_value=0, max_value=50_000).map(lambda cents: str(Decimal(cents) / 100))
minutes_ago = st.integers(min_value=0, max_value=MINUTES)
COUPON = RedeemedCoupon(code="WELCOME-1", campaign="welcome", issued_on=Channel.EMAIL)


@st.composite
def completed_orders(draw: st.DrawFn) -> dict[str, Any]:
    items = draw(
        st.lists(
            st.tuples(st.sampled_from(CATEGORIES), amounts, st.integers(min_value=1, max_value=3)),
            min_size=1,
            max_size=3,
        )
    )
    lines = [{"sku": f"S-{c}", "category": c, "price": p, "quantity": q} for c, p, q in items]
    total = sum((Decimal(p) * q for _, p, q in items), Decimal(0))
    return {"total": str(total), "currency": "EUR", "items": lines, "minutes": draw(minutes_ago)}


def returned_amount(draw: st.DrawFn, total: Decimal) -> str:
    """Mostly a share of the order's total (several such add up past it), sometimes any amount."""
    share = draw(st.sampled_from((Decimal(0), Decimal("0.1"), Decimal("0.5"), Decimal(1), None)))
    return draw(amounts) if share is None else str((total * share).quantize(Decimal("0.01")))


def order_event(draw: st.DrawFn, number: int, order_id: str, content: dict[str, Any]) -> dict[str, Any]:
    properties = {key: value for key, value in content.items() if key != "minutes"}
    if draw(st.integers(0, 5)) == 0:  # the same order sent again with another total
        properties = {**properties, "total": "1.00", "items": [{"sku": "S-x", "price": "1.00"}]}
    return raw(
        f"e{number}", "order_completed", content["minutes"] / (24 * 60), **{"orderId": order_id}, **properties
    )


@st.composite
def event_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    orders = {order_id: draw(completed_orders()) for order_id in ORDER_IDS}
    stream = []
    for number in range(draw(st.integers(min_value=0, max_value=40))):
        kind = draw(st.sampled_from(KINDS))
        channel = draw(st.sampled_from(CHANNELS))
        order_id = draw(st.sampled_from(ORDER_IDS))
        # Returns and cancellations mostly after their order, sometimes before it.
        after = orders[order_id]["minutes"] - draw(st.integers(min_value=-600, max_value=MINUTES))
        minutes = min(MINUTES, max(0, after)) if kind in ("order_returned", "order_cancelled") else None
        minutes = draw(minutes_ago) if minutes is None else minutes
        properties: dict[str, Any]
        match kind:
            case "order_completed":
                stream.append(order_event(draw, number, order_id, orders[order_id]))
                continue
            case "order_returned":
                amount = returned_amount(draw, Decimal(orders[order_id]["total"]))
                properties = {"orderId": order_id, "amount": amount}
            case "order_cancelled":
                properties = {"orderId": order_id}
            case "product_view" | "add_to_cart":
                properties = {"sku": "S-1", "category": draw(st.sampled_from(CATEGORIES))}
            case _:
                properties = {}
        stream.append(raw(f"e{number}", kind, minutes / (24 * 60), channel, **properties))
    return stream


def with_coupons(events: list[TrackedEvent], rng: random.Random) -> list[TrackedEvent]:
    """Some orders redeemed a coupon handed out by e-mail (as tracking marks them)."""
    return [
        e.model_copy(update={"redeemed": COUPON})
        if e.type is EventType.ORDER_COMPLETED and rng.random() < 0.3
        else e
        for e in events
    ]


def assert_not_negative(aggregates: Aggregates) -> None:
    assert aggregates.net >= 0
    assert aggregates.returned <= aggregates.gross - aggregates.cancelled
    assert (aggregates.average_order_value() or 0) >= 0
    assert all(bucket.net >= 0 and bucket.order_returns >= 0 for bucket in aggregates.daily.values())
    for entry in aggregates.order_index.values():
        assert entry.total is not None
        assert 0 <= entry.returned <= entry.total


def comparable(aggregates: Aggregates) -> dict[str, Any]:
    return aggregates.model_dump(exclude={"recent_event_ids"})


@given(event_streams(), st.randoms(use_true_random=False), st.integers(min_value=1, max_value=6))
def test_batches_shuffled_and_replayed_agree_with_the_fold_of_what_they_applied(
    stream: list[dict[str, Any]], rng: random.Random, batch_count: int
) -> None:
    events = with_coupons([parsed(e) for e in stream], rng)
    replays = [rng.choice(events) for _ in range(len(events) // 3)] if events else []
    delivered = rng.sample(events + replays, len(events) + len(replays))
    cuts = sorted(rng.randint(0, len(delivered)) for _ in range(batch_count - 1))
    batches = [delivered[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivered)], strict=True)]

    incremental, applied = Aggregates(), list[TrackedEvent]()
    for batch in batches:
        screened = order_refusals(incremental, batch)
        done = apply_checked(incremental, batch, NOW, RETENTION)
        assert {key: error.message for key, error in screened.items()} == {
            key: error.message for key, error in done.refused.items()
        }, "the screen before logging refuses what applying refuses"
        assert not {e.id for e in done.applied} & set(done.refused)
        incremental, applied = done.aggregates, applied + done.applied

    assert_not_negative(incremental)
    rebuilt = fold_events(rng.sample(applied, len(applied)), NOW, RETENTION)
    assert comparable(rebuilt) == comparable(incremental)
    assert set(incremental.recent_event_ids) == {event_digest(e.id) for e in applied}
    assert_not_negative(fold_events(delivered, NOW, RETENTION))


@given(event_streams(), event_streams())
def test_a_merge_counts_an_order_of_both_profiles_once_and_never_goes_negative(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> None:
    winner = apply_events(Aggregates(), [parsed(e) for e in ours], NOW, RETENTION)[0]
    loser_events = [parsed({**e, "id": f"l-{e['id']}"}) for e in theirs]
    loser = apply_events(Aggregates(), loser_events, NOW, RETENTION)[0]

    merged = merge_aggregates(winner, loser, NOW, RETENTION)

    assert_not_negative(merged)
    assert merged.orders == len(set(winner.order_index) | set(loser.order_index))
    assert merged.gross == sum(entry.total or 0 for entry in merged.order_index.values())

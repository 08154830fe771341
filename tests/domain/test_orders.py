"""The order rules: which order events a profile counts, and why it refuses the others."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from profilegate.domain.aggregates import Aggregates, apply_checked, fold_events, merge_aggregates, order_key
from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.money import Currencies
from profilegate.domain.orders import OrderEntry, entry_after, order_refusal
from profilegate.domain.refs import ProfileRef

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PLACED = NOW - timedelta(days=2)
ANN = ProfileRef(id="ann")
EUR = Currencies()
D5001 = OrderEntry(
    total=13976, day=PLACED.date().isoformat(), at=PLACED, event_id="d1-order-5001", returned=1990
)


def order_event(
    kind: EventType, event_id: str, amount: int = 0, at: datetime = NOW, order_id: str = "D-5001"
) -> TrackedEvent:
    return TrackedEvent(
        id=event_id, type=kind, at=at, channel=Channel.WEB, target=ANN, amount=amount, order_id=order_id
    )


@dataclass(frozen=True)
class Rule:
    name: str
    entry: OrderEntry | None
    event: TrackedEvent
    refusal: str | None


RULES = [
    Rule(
        "a return of an order never counted",
        None,
        order_event(EventType.ORDER_RETURNED, "r1", 500, order_id="NOPE-1"),
        "properties.orderId: no order NOPE-1 is known for this customer: "
        "a return or cancellation follows its order_completed",
    ),
    Rule(
        "a cancellation of an order never counted",
        None,
        order_event(EventType.ORDER_CANCELLED, "x1", order_id="NOPE-1"),
        "properties.orderId: no order NOPE-1 is known for this customer: "
        "a return or cancellation follows its order_completed",
    ),
    Rule(
        "a return against an older version's entry without a total",
        OrderEntry(returned=500),
        order_event(EventType.ORDER_RETURNED, "r1", 500),
        "properties.orderId: no order D-5001 is known for this customer: "
        "a return or cancellation follows its order_completed",
    ),
    Rule(
        "a return over what is left",
        D5001,
        order_event(EventType.ORDER_RETURNED, "r2", 50000),
        "properties.amount: the return of 500.00 EUR exceeds the 119.86 EUR left "
        "of order D-5001 (139.76 EUR)",
    ),
    Rule("a return of exactly what is left", D5001, order_event(EventType.ORDER_RETURNED, "r2", 11986), None),
    Rule("a return of nothing", D5001, order_event(EventType.ORDER_RETURNED, "r2", 0), None),
    Rule(
        "a return dated before its order",
        D5001,
        order_event(EventType.ORDER_RETURNED, "r2", 100, at=PLACED - timedelta(seconds=1)),
        "at: 2026-11-18T09:59:59+00:00 is before order D-5001 was placed (2026-11-18T10:00:00+00:00)",
    ),
    Rule(
        "a return at the instant of its order",
        D5001,
        order_event(EventType.ORDER_RETURNED, "r2", 100, PLACED),
        None,
    ),
    Rule(
        "a return of a cancelled order",
        D5001.model_copy(update={"cancelled": True}),
        order_event(EventType.ORDER_RETURNED, "r2", 100),
        "properties.orderId: order D-5001 was cancelled: nothing of it is left to return",
    ),
    Rule(
        "a cancellation dated before its order",
        D5001,
        order_event(EventType.ORDER_CANCELLED, "x1", at=PLACED - timedelta(days=1)),
        "at: 2026-11-17T10:00:00+00:00 is before order D-5001 was placed (2026-11-18T10:00:00+00:00)",
    ),
    Rule(
        "a cancellation dated before a return counted",
        D5001.model_copy(update={"returned_at": NOW}),
        order_event(EventType.ORDER_CANCELLED, "x1", at=NOW - timedelta(hours=1)),
        "at: 2026-11-20T09:00:00+00:00 is before the latest return of order D-5001 "
        "(2026-11-20T10:00:00+00:00): a cancellation takes what is left after its returns",
    ),
    Rule(
        "a cancellation at the instant of the latest return",
        D5001.model_copy(update={"returned_at": NOW}),
        order_event(EventType.ORDER_CANCELLED, "x1"),
        None,
    ),
    Rule(
        "a second cancellation (it takes nothing more)",
        D5001.model_copy(update={"cancelled": True}),
        order_event(EventType.ORDER_CANCELLED, "x2"),
        None,
    ),
    Rule(
        "the order again under another event id",
        D5001,
        order_event(EventType.ORDER_COMPLETED, "d1-order-5001-retry", 14980, PLACED),
        "properties.orderId: order D-5001 was counted already, as event d1-order-5001",
    ),
    Rule(
        "the order's own event again (a replay, not refused)",
        D5001,
        order_event(EventType.ORDER_COMPLETED, "d1-order-5001", 13976, PLACED),
        None,
    ),
    Rule("a new order", None, order_event(EventType.ORDER_COMPLETED, "o1", 1000), None),
    Rule(
        "an order taking the place of an older version's entry without a total",
        OrderEntry(cancelled=True),
        order_event(EventType.ORDER_COMPLETED, "o1", 1000),
        None,
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_order_refusal(rule: Rule) -> None:
    refusal = order_refusal(rule.entry, rule.event, EUR)
    assert (None if refusal is None else refusal.message) == rule.refusal


@pytest.mark.parametrize(
    ("entry", "left", "cancelled"),
    [
        (D5001, 11986, 0),
        (D5001.model_copy(update={"cancelled": True}), 0, 11986),
        (D5001.model_copy(update={"returned": 13976, "cancelled": True}), 0, 0),
        (OrderEntry(returned=100, cancelled=True), 0, 0),
    ],
)
def test_what_is_left_and_what_a_cancellation_takes(entry: OrderEntry, left: int, cancelled: int) -> None:
    assert (entry.left, entry.cancelled_amount) == (left, cancelled)


def test_the_entry_after_each_event() -> None:
    placed = entry_after(None, order_event(EventType.ORDER_COMPLETED, "o1", 13976, PLACED))
    returned = entry_after(placed, order_event(EventType.ORDER_RETURNED, "r1", 1990, NOW))
    earlier = entry_after(returned, order_event(EventType.ORDER_RETURNED, "r0", 10, PLACED))
    cancelled = entry_after(earlier, order_event(EventType.ORDER_CANCELLED, "x1", 0, NOW))

    assert placed == OrderEntry(total=13976, day="2026-11-18", at=PLACED, event_id="o1")
    assert (returned.returned, returned.returned_at) == (1990, NOW)
    assert (earlier.returned, earlier.returned_at) == (2000, NOW)
    assert (cancelled.cancelled, cancelled.cancelled_amount) == (True, 11976)


def test_the_fold_counts_an_older_version_s_over_return_as_what_is_left_and_its_retry_once() -> None:
    """Logged before the order rules: a return of 500.00 for an order of 139.76 (19.90 returned)
    and a return for an order that never existed."""
    logged = [
        order_event(EventType.ORDER_COMPLETED, "d1-order-5001", 13976, PLACED),
        order_event(EventType.ORDER_RETURNED, "r1", 1990, PLACED + timedelta(hours=1)),
        order_event(EventType.ORDER_RETURNED, "r2", 50000, NOW),
        order_event(EventType.ORDER_RETURNED, "r3", 50000, NOW, order_id="NOPE-1"),
        order_event(EventType.ORDER_COMPLETED, "d1-order-5001-retry", 14980, NOW),
    ]

    folded = fold_events(logged, NOW, 400)

    assert (folded.orders, folded.gross, folded.returned, folded.net) == (1, 13976, 13976, 0)
    assert folded.average_order_value() == 0
    assert folded.counts == {"order_completed": 2, "order_returned": 2}, "the retry as an event, not an order"
    assert folded.net_spend_in(NOW, 365) == 0


def test_on_ties_an_order_comes_before_its_return_and_its_cancellation() -> None:
    logged = [
        order_event(EventType.ORDER_CANCELLED, "a-x", at=PLACED),
        order_event(EventType.ORDER_RETURNED, "a-r", 1000, PLACED),
        order_event(EventType.ORDER_COMPLETED, "z-o", 13976, PLACED),
    ]

    folded = fold_events(logged, NOW, 400)

    assert (folded.returned, folded.cancelled, folded.cancelled_orders, folded.net) == (1000, 12976, 1, 0)


def test_a_live_batch_refuses_a_return_before_its_order_arrives() -> None:
    batch = [
        order_event(EventType.ORDER_RETURNED, "r1", 1000),
        order_event(EventType.ORDER_COMPLETED, "o1", 13976, PLACED),
        order_event(EventType.ORDER_RETURNED, "r2", 1000),
    ]

    done = apply_checked(Aggregates(), batch, NOW, 400)

    assert [event.id for event in done.applied] == ["o1", "r2"]
    assert set(done.refused) == {"r1"}


def test_a_merge_counts_a_shared_order_once_and_its_returns_at_most_its_total() -> None:
    ours = apply_checked(
        Aggregates(),
        [
            order_event(EventType.ORDER_COMPLETED, "w-o", 10000, PLACED),
            order_event(EventType.ORDER_RETURNED, "w-r", 7000),
        ],
        NOW,
        400,
    ).aggregates
    theirs = apply_checked(
        Aggregates(),
        [
            order_event(EventType.ORDER_COMPLETED, "l-o", 10000, PLACED),
            order_event(EventType.ORDER_RETURNED, "l-r", 6000),
            order_event(EventType.ORDER_CANCELLED, "l-x"),
        ],
        NOW,
        400,
    ).aggregates

    merged = merge_aggregates(ours, theirs, NOW, 400)

    entry = merged.order_index[order_key("D-5001")]
    assert (entry.event_id, entry.returned, entry.cancelled) == ("w-o", 10000, True)
    assert (merged.orders, merged.gross, merged.returned, merged.cancelled, merged.net) == (
        1,
        10000,
        10000,
        0,
        0,
    )
    assert (merged.returned_orders, merged.cancelled_orders) == (1, 1)
    assert merged.net_spend_in(NOW, 30) == 0
    assert Decimal(merged.return_rate()) == 1

"""Every part of a profile's aggregates is capped, and pruning keeps the window answers right."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from profilegate.domain.aggregates import (
    MAX_CATEGORIES,
    MAX_ORDER_ENTRIES,
    Aggregates,
    apply_events,
    merge_aggregates,
    order_key,
)
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.extensions import (
    MAX_EXTENSIONS_PER_PROFILE,
    ExtensionGrant,
    capped_grants,
    check_room_for,
)
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.merges import MAX_MERGED_FROM, absorb
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.traits import TraitLimits

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
RETENTION = 1130
ANN = ProfileRef(identity=Identity(type=IdentityType.EMAIL, value="ann@example.com"))


def event(event_id: str, kind: EventType, at: datetime, **fields: object) -> TrackedEvent:
    return TrackedEvent(id=event_id, type=kind, at=at, channel=Channel.WEB, target=ANN, **fields)


def viewed(event_id: str, category: str, weight: int, at: datetime = NOW) -> TrackedEvent:
    return event(event_id, EventType.PRODUCT_VIEW, at, categories=((category, weight),))


def placed(order_id: str, amount: int, at: datetime) -> TrackedEvent:
    return event(f"o-{order_id}", EventType.ORDER_COMPLETED, at, amount=amount, order_id=order_id)


def returned(order_id: str, amount: int, at: datetime) -> TrackedEvent:
    return event(f"r-{order_id}", EventType.ORDER_RETURNED, at, amount=amount, order_id=order_id)


def test_categories_keep_the_heaviest_with_ties_broken_by_name() -> None:
    weights = {f"c{index:04d}": 1 + index % 7 for index in range(MAX_CATEGORIES + 200)}
    events = [viewed(f"e{name}", name, weight) for name, weight in weights.items()]
    shuffled = random.Random(7).sample(events, len(events))

    kept = apply_events(Aggregates(), events, NOW, RETENTION)[0].categories
    kept_shuffled = apply_events(Aggregates(), shuffled, NOW, RETENTION)[0].categories

    expected = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:MAX_CATEGORIES]
    assert kept == dict(expected)
    assert kept_shuffled == kept
    assert len(kept) == MAX_CATEGORIES


def test_a_merge_keeps_the_heaviest_categories_of_both() -> None:
    ours = Aggregates(categories={f"a{index}": 10 for index in range(MAX_CATEGORIES)})
    theirs = Aggregates(categories={"a0": 5, **{f"b{index}": 1 for index in range(300)}})

    merged = merge_aggregates(ours, theirs, NOW, RETENTION).categories

    assert len(merged) == MAX_CATEGORIES
    assert merged["a0"] == 15
    assert not any(name.startswith("b") for name in merged)


def test_the_order_index_keeps_the_newest_orders_and_drops_unmatched_returns_first() -> None:
    start = NOW - timedelta(days=900)
    orders = [
        placed(f"o{index}", 1000, start + timedelta(hours=index * 3)) for index in range(MAX_ORDER_ENTRIES)
    ]
    stray = [returned(f"never-seen-{index}", 500, NOW) for index in range(50)]

    index = apply_events(Aggregates(), [*orders, *stray], NOW, RETENTION)[0].order_index

    assert len(index) == MAX_ORDER_ENTRIES
    assert all(entry.day is not None for entry in index.values())
    one_more = apply_events(Aggregates(order_index=index), [placed("newest", 1000, NOW)], NOW, RETENTION)[0]
    assert len(one_more.order_index) == MAX_ORDER_ENTRIES
    assert order_key("newest") in one_more.order_index
    (dropped,) = set(index) - set(one_more.order_index)
    assert index[dropped].day == min(entry.day or "" for entry in index.values())  # an oldest one went


def test_order_entries_past_the_retention_window_are_pruned() -> None:
    old = placed("old", 1000, NOW - timedelta(days=RETENTION + 1))
    recent = placed("recent", 1000, NOW - timedelta(days=10))

    index = apply_events(Aggregates(), [old, recent], NOW, RETENTION)[0].order_index

    assert set(index) == {order_key("recent")}


def test_window_metrics_are_unchanged_by_the_caps() -> None:
    """Three years of orders, returns and views over thousands of categories, a week at a time:
    the 30, 365 and 1,000-day answers equal those counted from the events themselves."""
    rng = random.Random(11)
    aggregates, events, batch = Aggregates(), [], []
    for day in range(1100, -1, -1):
        moment = NOW - timedelta(days=day)
        batch += [viewed(f"v{day}-{n}", f"cat-{rng.randrange(3000)}", 1, moment) for n in range(8)]
        batch += [placed(f"{day}-{n}", 1000 + day, moment) for n in range(6)]
        if day % 5 == 0:
            batch.append(returned(f"{day + 20}-0", 300, moment))
        if day % 7 == 0:
            aggregates = apply_events(aggregates, batch, moment, RETENTION)[0]
            events += batch
            batch = []
    assert len(aggregates.order_index) == MAX_ORDER_ENTRIES
    assert len(aggregates.categories) == MAX_CATEGORIES
    for days in (30, 365, 1000):
        start = (NOW - timedelta(days=days - 1)).date()
        inside = [e for e in events if e.at.date() >= start]
        placed_inside = {e.order_id: e.amount for e in inside if e.type is EventType.ORDER_COMPLETED}
        refunds = sum(
            e.amount for e in events if e.type is EventType.ORDER_RETURNED and e.order_id in placed_inside
        )
        assert aggregates.orders_in(NOW, days) == len(placed_inside)
        assert aggregates.net_spend_in(NOW, days) == sum(placed_inside.values()) - refunds
        assert aggregates.events_in(NOW, days, EventType.PRODUCT_VIEW) == 8 * days


def test_merged_from_keeps_the_last_merges_only() -> None:
    winner = Profile(id="winner", created_at=NOW, updated_at=NOW)
    for index in range(MAX_MERGED_FROM + 30):
        loser = Profile(id=f"loser-{index:03d}", created_at=NOW, updated_at=NOW)
        winner = absorb(winner, loser, now=NOW, retention_days=RETENTION, limits=TraitLimits())

    assert len(winner.merged_from) == MAX_MERGED_FROM
    assert winner.merged_from[0] == "loser-030"
    assert winner.merged_from[-1] == f"loser-{MAX_MERGED_FROM + 29:03d}"


def test_extensions_past_the_cap_drop_expired_ones_first_then_the_oldest() -> None:
    grants = {
        f"x{index:03d}": ExtensionGrant(
            name=f"x{index:03d}",
            at=NOW - timedelta(minutes=index),
            by="admin-key",
            reason="r",
            expires_at=NOW - timedelta(days=1) if index % 10 == 0 else None,
        )
        for index in range(MAX_EXTENSIONS_PER_PROFILE + 20)
    }

    kept = capped_grants(grants, NOW)

    assert len(kept) == MAX_EXTENSIONS_PER_PROFILE
    assert all(grant.active(NOW) for grant in kept.values())
    assert "x001" in kept
    assert f"x{MAX_EXTENSIONS_PER_PROFILE + 19:03d}" not in kept  # the oldest active one went


def test_a_new_extension_past_the_cap_is_refused_naming_it() -> None:
    active = {
        f"x{index}": ExtensionGrant(name=f"x{index}", at=NOW, by="admin-key", reason="r")
        for index in range(MAX_EXTENSIONS_PER_PROFILE)
    }

    check_room_for(active, "x0", NOW)  # setting one it has again is fine
    with pytest.raises(InvalidInput) as refused:
        check_room_for(active, "one-more", NOW)
    assert f"at most {MAX_EXTENSIONS_PER_PROFILE} extensions" in refused.value.reason

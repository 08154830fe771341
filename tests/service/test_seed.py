"""The demo data: deterministic, valid events on every channel, loaded through tracking once."""

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from profilegate.domain.events import Channel, EventRules, EventType, parse_event
from profilegate.service.profiles import ProfileRules
from profilegate.service.seed import DEMO_DAYS, SeedRules, demo_events, seed
from profilegate.service.tiers import ActivePolicy, tier_distribution
from profilegate.service.tracking import TrackingRules
from profilegate.settings import Settings
from profilegate.storage.store import Repositories

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROFILES: list[dict[str, Any]] = json.loads((FIXTURES / "profiles.json").read_text())


def test_the_demo_events_are_the_same_every_run_bar_their_time(now: datetime) -> None:
    first = demo_events(PROFILES, now)
    later = demo_events(PROFILES, now + timedelta(days=3))

    assert first == demo_events(PROFILES, now)
    assert [{**e, "at": None} for e in first] == [{**e, "at": None} for e in later]
    assert [e["id"] for e in first] == [f"seed-{n:05d}" for n in range(len(first))]
    assert 1000 <= len(first) <= 2000


def test_every_demo_event_is_valid_and_every_type_and_channel_occurs(now: datetime) -> None:
    parsed = [parse_event(raw, EventRules(), now) for raw in demo_events(PROFILES, now)]

    assert {e.type for e in parsed} == set(EventType)
    assert {e.channel for e in parsed} == set(Channel)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert all(today - timedelta(days=DEMO_DAYS) <= e.at < today for e in parsed)
    store_orders = [e for e in parsed if e.type is EventType.ORDER_COMPLETED and e.channel is Channel.STORE]
    assert store_orders
    assert all(e.properties["storeId"].startswith("store-") for e in store_orders)


def test_returns_and_cancellations_follow_an_order_of_the_same_shopper(now: datetime) -> None:
    parsed = [parse_event(raw, EventRules(), now) for raw in demo_events(PROFILES, now)]
    orders = {e.order_id: e for e in parsed if e.type is EventType.ORDER_COMPLETED}
    followers = [e for e in parsed if e.type in (EventType.ORDER_RETURNED, EventType.ORDER_CANCELLED)]

    assert Counter(e.type for e in followers).keys() == {EventType.ORDER_RETURNED, EventType.ORDER_CANCELLED}
    for event in followers:
        order = orders[event.order_id]
        assert (order.target, order.at < event.at) == (event.target, True)
        assert event.type is EventType.ORDER_CANCELLED or event.amount <= order.amount


def seed_rules(tracking: TrackingRules) -> SeedRules:
    settings = Settings(mongodb_uri="mongodb://unused")
    return SeedRules(tracking, settings.tier_rules, settings.segment_rules)


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules)


async def test_seeding_twice_tracks_every_event_once(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    count = len(demo_events(PROFILES, now))

    first = await seed(repos, FIXTURES, seed_rules(tracking), now)
    again = await seed(repos, FIXTURES, seed_rules(tracking), now + timedelta(hours=1))

    assert (first.profiles_created, first.events_accepted, first.events_duplicate) == (36, count, 0)
    assert (again.profiles_updated, again.events_accepted, again.events_duplicate) == (36, 0, count)
    assert first.events_rejected == again.events_rejected == 0
    profiles = [p async for p in repos.profiles.merge_pointers()]
    assert len(profiles) == 36, "every event reached a fixture profile"
    assert (first.tier_policy_version, again.tier_policy_version) == (1, None)


async def test_the_demo_customers_spread_over_the_default_tiers(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await seed(repos, FIXTURES, seed_rules(tracking), now)
    found = await tier_distribution(repos, ActivePolicy(repos.tier_policies, cache_seconds=0), now)
    assert found is not None
    policy, counts = found
    assert policy.version == 1
    assert sum(counts.values()) == 36
    assert sum(1 for n in counts.values() if n) >= 3, counts


def test_the_demo_events_are_the_same_at_any_hour_of_a_day(now: datetime) -> None:
    """So the README's answers over the demo data, windows counted in days, hold all day."""
    morning = now.replace(hour=0, minute=0, second=1)
    evening = now.replace(hour=23, minute=59, second=59)
    assert demo_events(PROFILES, morning) == demo_events(PROFILES, evening)

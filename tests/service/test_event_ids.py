"""An event id names one event in the whole shop; every profile's aggregates equal a rebuild.

A second use of an id for another person is a duplicate: it is neither applied nor logged
again, so the event log, the aggregates, ``rebuild-aggregates`` and ``exportProfile`` agree.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from profilegate.domain.events import parse_event
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.profiles import Profile
from profilegate.service.identify import IdentifyRules, identify
from profilegate.service.rebuild import rebuild_aggregates
from profilegate.service.tracking import ID_USED_ELSEWHERE, Status, TrackingRules, track
from profilegate.storage.store import Repositories
from tests.conftest import fresh_repositories
from tests.service.raw_events import email_ref, event, order
from tests.service.test_rebuild import RETENTION, all_profiles, default_tracking, profile_of

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADMIN = Principal(name="ops", role=Role.ADMIN)


def identifying(tracking: TrackingRules) -> IdentifyRules:
    return IdentifyRules(profiles=tracking.profiles, blocked_identities=frozenset(), retention_days=RETENTION)


def metrics(profile: Profile) -> dict[str, Any]:
    """What a rebuild must leave as it is: everything but the order of the replay guard."""
    return profile.aggregates.model_dump(exclude={"recent_event_ids"})


async def assert_rebuild_changes_nothing(repos: Repositories) -> None:
    tracked = {pid: p for pid, p in (await all_profiles(repos)).items() if p.merged_into is None}
    await rebuild_aggregates(repos, NOW, RETENTION)
    rebuilt = await all_profiles(repos)
    for profile_id, profile in tracked.items():
        assert metrics(rebuilt[profile_id]) == metrics(profile), profile_id
        guard = set(profile.aggregates.recent_event_ids)
        assert set(rebuilt[profile_id].aggregates.recent_event_ids) == guard


async def test_an_id_used_for_a_second_profile_is_a_duplicate_and_the_rebuild_agrees(
    repos: Repositories,
) -> None:
    tracking = default_tracking()
    ann_order = order("e1", "o-1", "50.00", NOW, email_ref("ann@example.com"))
    bob_order = order("e1", "o-9", "70.00", NOW, email_ref("bob@example.com"))
    first = await track(repos, [ann_order], tracking, NOW)
    second = await track(repos, [bob_order], tracking, NOW)

    assert [r.status for r in first.results] == [Status.ACCEPTED]
    assert [(r.status, r.reason) for r in second.results] == [(Status.DUPLICATE, ID_USED_ELSEWHERE)]
    ann, bob = await profile_of(repos, "ann@example.com"), await profile_of(repos, "bob@example.com")
    assert (ann.aggregates.orders, bob.aggregates.orders) == (1, 0)
    await assert_rebuild_changes_nothing(repos)


async def test_an_id_logged_for_a_profile_merged_in_since_is_applied_to_the_survivor(
    repos: Repositories,
) -> None:
    tracking = default_tracking()
    view = event("v1", "product_view", NOW, email_ref("ann@example.com"), sku="A1", category="shoes")
    await track(repos, [event("b0", "page_view", NOW, email_ref("bob@example.com"))], tracking, NOW)
    ann_view = event("a0", "page_view", NOW, email_ref("ann@example.com"))
    ann_created = await track(repos, [ann_view], tracking, NOW)
    assert ann_created.count(Status.ACCEPTED) == 1
    ann = await profile_of(repos, "ann@example.com")
    # The view was logged for ann, and the process died before ann's profile took it in.
    await repos.events.append([(parse_event(view, tracking.events, NOW), ann.id)], NOW)
    emails = (
        normalise_identity(IdentityType.EMAIL, "bob@example.com"),
        normalise_identity(IdentityType.EMAIL, "ann@example.com"),
    )
    await identify(repos, None, emails, {}, identifying(tracking), ADMIN, NOW)
    survivor = await profile_of(repos, "bob@example.com")

    replay = await track(repos, [view], tracking, NOW)

    assert [r.status for r in replay.results] == [Status.ACCEPTED]
    assert (await profile_of(repos, "ann@example.com")).aggregates.counts.get("product_view") == 1
    assert survivor.id == (await profile_of(repos, "ann@example.com")).id
    await assert_rebuild_changes_nothing(repos)


# Random streams: a few shoppers, event ids drawn from a small pool (so ids come back, for the
# same shopper and for others), orders completed, cancelled and returned under shared order
# ids, replays, and identify calls that merge two shoppers' profiles between batches. A stream
# holds at most 72 events, so in the segmented layout it stays inside one log segment, the
# reach of the shop-wide id check there (see storage/events.py).
PEOPLE = ("ann@example.com", "bob@example.com", "cem@example.com", "dan@example.com")
ORDER_IDS = ("order-1", "order-2", "order-3")
KINDS = ("order_completed", "order_returned", "order_cancelled", "product_view", "page_view")
amounts = st.integers(min_value=1, max_value=20_000).map(lambda cents: str(Decimal(cents) / 100))
minutes_ago = st.integers(min_value=0, max_value=200 * 24 * 60)


@st.composite
def raw_event(draw: st.DrawFn, orders: dict[str, tuple[str, int]]) -> dict[str, Any]:
    kind, who = draw(st.sampled_from(KINDS)), draw(st.sampled_from(PEOPLE))
    event_id, order_id = f"e{draw(st.integers(0, 14))}", draw(st.sampled_from(ORDER_IDS))
    at = NOW - timedelta(minutes=draw(minutes_ago))
    # An order shared by shoppers (counted once when they merge), or the shopper's own. Returns
    # and cancellations are of own orders only: which returns of an order that two merged
    # profiles both counted the rebuild's fold cuts to what is left depends on their times,
    # which the merged sums do not keep (docs/metrics.md).
    own = f"{who}-{order_id}"
    if kind == "order_completed":
        total, minutes = orders[order_id]
        placed = own if draw(st.booleans()) else order_id
        return order(event_id, placed, total, NOW - timedelta(minutes=minutes), email_ref(who))
    order_id = own
    properties: dict[str, Any] = {}
    if kind == "order_returned":
        properties = {"orderId": order_id, "amount": draw(amounts)}
    elif kind == "order_cancelled":
        properties = {"orderId": order_id}
    elif kind == "product_view":
        properties = {"sku": "A1", "category": draw(st.sampled_from(("shoes", "bags")))}
    return event(event_id, kind, at, email_ref(who), **properties)


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Batches to track and pairs of shoppers to merge. An order's completion carries the same
    content under any event id (a second, different completion of one order is ignored)."""
    orders = {order_id: (draw(amounts), draw(minutes_ago)) for order_id in ORDER_IDS}
    batches = st.lists(raw_event(orders), min_size=1, max_size=6).map(lambda batch: ("track", batch))
    merges = st.tuples(st.sampled_from(PEOPLE), st.sampled_from(PEOPLE)).map(lambda pair: ("merge", pair))
    return draw(st.lists(st.one_of(batches, merges), min_size=1, max_size=12))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
async def test_live_aggregates_equal_a_rebuild_whatever_the_stream(store_uri: str, plan: list[Any]) -> None:
    note(repr(plan))
    tracking = default_tracking()
    async with fresh_repositories(store_uri) as repos:
        used: dict[str, str] = {}  # event id -> the person it was first accepted for
        for kind, step in plan:
            if kind == "merge":
                emails = tuple(normalise_identity(IdentityType.EMAIL, email) for email in dict.fromkeys(step))
                await identify(repos, None, emails, {}, identifying(tracking), ADMIN, NOW)
                continue
            result = await track(repos, step, tracking, NOW)
            for raw, outcome in zip(step, result.results, strict=True):
                person = raw["identity"]["value"]
                if outcome.status is Status.ACCEPTED:
                    assert used.setdefault(raw["id"], person) == person
        await assert_rebuild_changes_nothing(repos)

"""rebuild_aggregates on the real store: it agrees with tracking, repairs, follows merges."""

import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profilegate.domain.aggregates import RECENT_EVENT_IDS, Aggregates, event_digest, fold_events
from profilegate.domain.events import EventRules, parse_event
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.profiles import ProfileChange, ProfileRules, upsert_profile
from profilegate.service.rebuild import Progress, Stage, rebuild_aggregates
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.settings import Settings
from profilegate.storage.documents import Database, Document
from profilegate.storage.events import LOG_NAME, EventLog
from profilegate.storage.layout import Retention
from profilegate.storage.store import Repositories
from tests.conftest import TEST_LAYOUT, fresh_repositories
from tests.service.raw_events import email_ref, event, shopping_batch

RETENTION = 400
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules, retention_days=RETENTION)


def default_tracking() -> TrackingRules:
    """The ``tracking`` fixture's rules, for a test that cannot take function-scoped fixtures."""
    profiles = Settings(mongodb_uri="mongodb://unused").profile_rules
    return TrackingRules(events=EventRules(), profiles=profiles, retention_days=RETENTION)


def ref(email: str) -> ProfileRef:
    return ProfileRef(identity=normalise_identity(IdentityType.EMAIL, email))


async def profile_of(repos: Repositories, email: str) -> Profile:
    profile = await find_profile(repos, ref(email))
    assert profile is not None
    return profile


async def all_profiles(repos: Repositories) -> dict[str, Profile]:
    found = {}
    async for pointers in repos.profiles.merge_pointers():
        profile = await repos.profiles.get(pointers.id)
        assert profile is not None
        found[profile.id] = profile
    return found


async def overwrite(repos: Repositories, profile_id: str, **fields: Any) -> None:
    """Change stored fields behind the services' back, as a bug or a half-done merge would."""
    profile = await repos.profiles.get(profile_id)
    assert profile is not None
    changed = profile.model_copy(update={**fields, "version": profile.version + 1})
    assert await repos.profiles.replace_fields(changed, expected_version=profile.version)


async def merge_by_hand(repos: Repositories, loser: str, winner: str, *, finished: bool = True) -> None:
    """The state a merge leaves: the loser points at the winner; once finished, the winner
    lists the loser in ``mergedFrom`` (its aggregates are emptied so the rebuild must fill them)."""
    await overwrite(repos, loser, merged_into=winner)
    if finished:
        survivor = await repos.profiles.get(winner)
        assert survivor is not None
        await overwrite(repos, winner, merged_from=(*survivor.merged_from, loser), aggregates=Aggregates())


def folded(tracking: TrackingRules, *batches: list[dict[str, Any]]) -> Aggregates:
    events = [parse_event(raw, tracking.events, NOW) for batch in batches for raw in batch]
    return fold_events(events, NOW, RETENTION)


async def stored_document(database: Database, profile_id: str) -> Document:
    for name in await database.list_collection_names():
        if name.startswith("profiles"):
            found = await database[name].find_one({"_id": profile_id})
            if found is not None:
                return found
    raise AssertionError(f"no document for profile {profile_id}")


async def test_rebuild_restores_corrupted_aggregates(repos: Repositories, tracking: TrackingRules) -> None:
    await track(repos, shopping_batch("ann@example.com", NOW, "ann"), tracking, NOW)
    await track(repos, shopping_batch("bob@example.com", NOW, "bob"), tracking, NOW)
    ann, bob = await profile_of(repos, "ann@example.com"), await profile_of(repos, "bob@example.com")
    await overwrite(repos, ann.id, aggregates=Aggregates())

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

    assert (rebuilt.profiles, rebuilt.changed, rebuilt.events, rebuilt.unattributed) == (2, 1, 16, 0)
    assert (await profile_of(repos, "ann@example.com")).aggregates == ann.aggregates
    assert await profile_of(repos, "bob@example.com") == bob, "an intact profile is not written"


class EarlyScan(EventLog):
    """The log as a scan sees it that began before the ``late`` events were logged."""

    late: frozenset[str] = frozenset()

    async def scan(self) -> AsyncIterator[Document]:
        async for document in super().scan():
            if document["_id"] not in self.late:
                yield document


async def test_events_applied_after_the_scan_began_are_read_again(
    repos: Repositories, database: Database, tracking: TrackingRules
) -> None:
    batch = shopping_batch("ann@example.com", NOW, "ann")
    await track(repos, batch, tracking, NOW)
    ann = await profile_of(repos, "ann@example.com")
    early = EarlyScan(TEST_LAYOUT.log(database, LOG_NAME, Retention("receivedAt", 86_400)))
    early.late = frozenset({"ann-o1", "ann-r1"})

    rebuilt = await rebuild_aggregates(dataclasses.replace(repos, events=early), NOW, RETENTION)

    assert (rebuilt.profiles, rebuilt.changed, rebuilt.events) == (1, 0, len(batch))
    assert await profile_of(repos, "ann@example.com") == ann


async def test_a_profile_without_events_gets_empty_aggregates(
    repos: Repositories, tracking: TrackingRules
) -> None:
    created = await upsert_profile(repos, ProfileChange(ref=ref("cem@example.com")), tracking.profiles, NOW)
    await overwrite(
        repos, created.profile.id, aggregates=folded(tracking, shopping_batch("x@example.com", NOW))
    )

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

    assert (rebuilt.profiles, rebuilt.changed, rebuilt.events) == (1, 1, 0)
    assert (await profile_of(repos, "cem@example.com")).aggregates == Aggregates()


async def test_events_of_merged_away_profiles_count_for_the_survivor(
    repos: Repositories, database: Database, tracking: TrackingRules
) -> None:
    batches = {name: shopping_batch(f"{name}@example.com", NOW, name) for name in ("ann", "bob", "cem")}
    for batch in batches.values():
        await track(repos, batch, tracking, NOW)
    ann, bob, cem = [await profile_of(repos, f"{name}@example.com") for name in ("ann", "bob", "cem")]
    await merge_by_hand(repos, cem.id, bob.id)
    await merge_by_hand(repos, bob.id, ann.id)
    merged_away = {p.id: await stored_document(database, p.id) for p in (bob, cem)}

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

    assert (rebuilt.profiles, rebuilt.events) == (1, 24)
    survivor = await repos.profiles.get(ann.id)
    assert survivor is not None
    assert survivor.aggregates == folded(tracking, *batches.values())
    assert survivor.aggregates.orders == 6
    for profile_id, document in merged_away.items():
        assert await stored_document(database, profile_id) == document


async def test_an_unfinished_merge_leaves_the_events_with_the_merged_away_profile(
    repos: Repositories, tracking: TrackingRules
) -> None:
    ann_batch, bob_batch = (
        shopping_batch("ann@example.com", NOW, "ann"),
        shopping_batch("bob@example.com", NOW, "bob"),
    )
    await track(repos, ann_batch, tracking, NOW)
    await track(repos, bob_batch, tracking, NOW)
    ann, bob = await profile_of(repos, "ann@example.com"), await profile_of(repos, "bob@example.com")
    await merge_by_hand(repos, bob.id, ann.id, finished=False)
    await overwrite(repos, ann.id, aggregates=Aggregates())
    merged_away = await repos.profiles.get(bob.id)

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

    assert (rebuilt.profiles, rebuilt.events, rebuilt.unattributed) == (1, len(ann_batch), len(bob_batch))
    assert (await profile_of(repos, "ann@example.com")).aggregates == folded(tracking, ann_batch)
    assert await repos.profiles.get(bob.id) == merged_away
    assert merged_away is not None
    assert merged_away.aggregates == folded(tracking, bob_batch), "the merge will add these"


async def test_the_rebuilt_recent_ids_are_the_newest_by_event_time(
    repos: Repositories, tracking: TrackingRules
) -> None:
    views = [
        event(f"v{n:04d}", "page_view", NOW - timedelta(minutes=n), email_ref("ann@example.com"))
        for n in range(RECENT_EVENT_IDS + 200)
    ]
    shuffled = random.Random(3).sample(views, len(views))
    for start in range(0, len(shuffled), tracking.max_batch):
        await track(repos, shuffled[start : start + tracking.max_batch], tracking, NOW)
    tracked = await profile_of(repos, "ann@example.com")

    await rebuild_aggregates(repos, NOW, RETENTION)

    newest = [event_digest(view["id"]) for view in reversed(views[:RECENT_EVENT_IDS])]
    rebuilt = await profile_of(repos, "ann@example.com")
    assert list(rebuilt.aggregates.recent_event_ids) == newest
    assert rebuilt.aggregates.counts == tracked.aggregates.counts == {"page_view": RECENT_EVENT_IDS + 200}
    assert set(tracked.aggregates.recent_event_ids) != set(newest), "tracking kept the last applied"
    replay = await track(repos, views[:100], tracking, NOW)
    assert replay.count(Status.DUPLICATE) == 100


async def test_progress_reports_every_logged_event_and_every_profile(
    repos: Repositories, tracking: TrackingRules
) -> None:
    batch = shopping_batch("ann@example.com", NOW, "ann")
    await track(repos, batch, tracking, NOW)
    await track(repos, batch, tracking, NOW)  # a replay
    await track(repos, shopping_batch("bob@example.com", NOW, "bob"), tracking, NOW)
    seen: list[Progress] = []

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION, on_progress=seen.append)

    reading = [p for p in seen if p.stage is Stage.READING]
    writing = [(p.done, p.total) for p in seen if p.stage is Stage.WRITING]
    assert reading[-1].done == len([document async for document in repos.events.scan()])
    assert writing == [(0, 2), (1, 2), (2, 2)]
    assert rebuilt.events == 2 * len(batch)


# Rebuild equals incremental: random streams for three shoppers, delivered in random batches,
# shuffled and with replays. Orders are sent again under new event ids (sometimes with another
# total); returns ask for shares of their order's total that add up past it, or any amount,
# and come dated before or after their order, or before it arrives; cancellations likewise.
# Event ids are unique across shoppers, as the log's ``_id`` requires.
PEOPLE = ("ann@example.com", "bob@example.com", "cem@example.com")
ORDER_IDS = ("order-1", "order-2", "order-3")
KINDS = (
    "order_completed",
    "order_returned",
    "order_cancelled",
    "product_view",
    "add_to_cart",
    "checkout_started",
    "page_view",
)
amounts = st.integers(min_value=0, max_value=20_000).map(lambda cents: str(Decimal(cents) / 100))
minutes_ago = st.integers(min_value=0, max_value=300 * 24 * 60)
shares = st.sampled_from((Decimal(0), Decimal("0.25"), Decimal("0.5"), Decimal(1), None))


def order_properties(order_id: str, total: str) -> dict[str, Any]:
    items = [{"sku": "A1", "category": "shoes", "price": total}]
    return {"orderId": order_id, "total": total, "currency": "EUR", "items": items}


@st.composite
def follower(draw: st.DrawFn, kind: str, total: str, placed: int) -> tuple[int, dict[str, Any]]:
    """A return or cancellation: minutes ago (mostly after its order) and its properties."""
    minutes = max(0, placed - draw(st.integers(min_value=-240, max_value=60 * 24 * 60)))
    if kind == "order_cancelled":
        return minutes, {}
    share = draw(shares)
    amount = draw(amounts) if share is None else str((Decimal(total) * share).quantize(Decimal("0.01")))
    return minutes, {"amount": amount}


@st.composite
def deliveries(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    orders = {order_id: (draw(amounts), draw(minutes_ago)) for order_id in ORDER_IDS}
    stream = []
    for number in range(draw(st.integers(min_value=1, max_value=30))):
        kind, who, order_id = (
            draw(st.sampled_from(KINDS)),
            draw(st.sampled_from(PEOPLE)),
            draw(st.sampled_from(ORDER_IDS)),
        )
        at = NOW - timedelta(minutes=draw(minutes_ago))
        total, placed = orders[order_id]
        properties: dict[str, Any] = {}
        if kind == "order_completed":
            at = NOW - timedelta(minutes=placed)
            properties = order_properties(order_id, total if draw(st.integers(0, 4)) else "1.00")
        elif kind in ("order_returned", "order_cancelled"):
            minutes, properties = draw(follower(kind, total, placed))
            at, properties = NOW - timedelta(minutes=minutes), {"orderId": order_id, **properties}
        elif kind in ("product_view", "add_to_cart"):
            properties = {"sku": "A1", "category": draw(st.sampled_from(("shoes", "bags")))}
        channel = draw(st.sampled_from(("web", "app", "store")))
        stream.append(event(f"e{number}", kind, at, email_ref(who), channel, **properties))
    rng = draw(st.randoms(use_true_random=False))
    delivered = stream + [rng.choice(stream) for _ in range(len(stream) // 3)]
    rng.shuffle(delivered)
    cuts = sorted(rng.randint(0, len(delivered)) for _ in range(draw(st.integers(min_value=0, max_value=4))))
    return [delivered[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivered)], strict=True)]


def assert_not_negative(aggregates: Aggregates) -> None:
    assert aggregates.net >= 0
    assert (aggregates.average_order_value() or 0) >= 0
    assert all(bucket.net >= 0 for bucket in aggregates.daily.values())
    assert all(0 <= entry.returned <= (entry.total or 0) for entry in aggregates.order_index.values())


@settings(max_examples=15, deadline=None)
@given(deliveries())
async def test_a_rebuild_leaves_tracked_aggregates_as_they_are(
    store_uri: str, batches: list[list[dict[str, Any]]]
) -> None:
    rules = default_tracking()
    async with fresh_repositories(store_uri) as repos:
        accepted: set[str] = set()
        for batch in batches:
            result = await track(repos, batch, rules, NOW)
            accepted |= {
                outcome.id for outcome in result.results if outcome.status is Status.ACCEPTED if outcome.id
            }
            for outcome in result.results:
                assert outcome.status is not Status.REJECTED or outcome.reason, "a refusal says why"
        tracked = await all_profiles(repos)

        rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

        assert rebuilt.profiles == len(tracked)
        assert rebuilt.events == len(accepted), "refused events are not logged"
        for profile_id, profile in (await all_profiles(repos)).items():
            before, after = tracked[profile_id].aggregates, profile.aggregates
            assert_not_negative(before)
            assert after.model_dump(exclude={"recent_event_ids"}) == before.model_dump(
                exclude={"recent_event_ids"}
            )
            assert set(after.recent_event_ids) == set(before.recent_event_ids)

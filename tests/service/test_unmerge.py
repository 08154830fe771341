"""mergeProfiles and unmergeProfiles through the service, on the real store."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from profilegate.domain.aggregates import Aggregates, fold_events
from profilegate.domain.changes import ChangeKind
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import EventRules, parse_event
from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.merges import MergeBlocked, UnmergeOutOfOrder
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.tiers import spend_by_day
from profilegate.service.changes import ChangeRecorder
from profilegate.service.identify import IdentifyRules, identify
from profilegate.service.merges import merge_profiles, unmerge
from profilegate.service.profiles import ConsentChange, ProfileChange, ProfileRules, upsert_profile
from profilegate.service.rebuild import rebuild_aggregates
from profilegate.service.resolve import find_loyalty_view, find_profile
from profilegate.service.segments import SegmentCatalogue, SegmentInput, SegmentRules, save_segment
from profilegate.service.tiers import ActivePolicy
from profilegate.service.tracking import TrackingRules, track
from profilegate.storage.store import Repositories
from tests.service.raw_events import email_ref, event, order, shopping_batch

ADMIN = Principal(name="ops", role=Role.ADMIN)
RETENTION = 400
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
MERGED_AT = T0 + timedelta(days=2)
UNMERGED_AT = T0 + timedelta(days=3)


def email(value: str) -> Identity:
    return normalise_identity(IdentityType.EMAIL, value)


def customer(value: str) -> Identity:
    return normalise_identity(IdentityType.CUSTOMER_ID, value)


@pytest.fixture
def feed(repos: Repositories) -> ChangeRecorder:
    return ChangeRecorder(
        repos.changes,
        SegmentCatalogue(repos, cache_seconds=0),
        ActivePolicy(repos.tier_policies, cache_seconds=0),
        partner_purpose="partner_sharing",
    )


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules, retention_days=RETENTION)


@pytest.fixture
def identifying(rules: ProfileRules) -> IdentifyRules:
    return IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=RETENTION)


def folded(batches: list[dict[str, Any]], now: datetime) -> Aggregates:
    return fold_events([parse_event(raw, EventRules(), now) for raw in batches], now, RETENTION)


async def customer_with_orders(
    repos: Repositories, rules: ProfileRules, tracking: TrackingRules, name: str, number: str, at: datetime
) -> tuple[Profile, list[dict[str, Any]]]:
    """A seeded-like customer: customer id, e-mail, traits, a consent and a day of shopping."""
    change = ProfileChange(
        ref=ProfileRef(identity=customer(number)),
        identities=(email(f"{name}@example.com"),),
        traits={"firstName": name.title(), "tier": name},
        consents=(ConsentChange("email_marketing", name == "bob", "web"),),
    )
    await upsert_profile(repos, change, rules, at)
    batch = shopping_batch(f"{name}@example.com", at, name)
    await track(repos, batch, tracking, at)
    profile = await find_profile(repos, ProfileRef(identity=customer(number)))
    assert profile is not None
    return profile, batch


async def test_an_unmerge_gives_each_customer_their_own_back(
    repos: Repositories,
    rules: ProfileRules,
    tracking: TrackingRules,
    identifying: IdentifyRules,
    feed: ChangeRecorder,
) -> None:
    ann, ann_events = await customer_with_orders(repos, rules, tracking, "ann", "C-1", T0)
    bob, bob_events = await customer_with_orders(
        repos, rules, tracking, "bob", "C-2", T0 + timedelta(hours=1)
    )
    both = (email("ann@example.com"), email("bob@example.com"))
    with pytest.raises(MergeBlocked, match="C-1 and C-2"):
        await identify(repos, None, both, {}, identifying, ADMIN, MERGED_AT)

    merged = await merge_profiles(
        repos,
        ProfileRef(identity=customer("C-1")),
        ProfileRef(identity=customer("C-2")),
        identifying,
        ADMIN,
        "same person",
        MERGED_AT,
        observer=feed,
    )
    assert (merged.profile.id, merged.merged_profile_id) == (ann.id, bob.id)
    assert merged.profile.aggregates.orders == 4
    # After the merge: an order through Bob's e-mail, a view through Ann's, a new identity and
    # a changed trait on the merged profile.
    after = MERGED_AT + timedelta(hours=1)
    bob_later = [order("bob-o3", "bob-order-3", "45.00", after, email_ref("bob@example.com"))]
    ann_later = [event("ann-v9", "product_view", after, email_ref("ann@example.com"), sku="B2")]
    await track(repos, bob_later + ann_later, tracking, after)
    phone = normalise_identity(IdentityType.PHONE, "+49 30 1234567")
    change = ProfileChange(ref=ProfileRef(id=ann.id), identities=(phone,), traits={"tier": "gold"})
    await upsert_profile(repos, change, rules, after)

    done = await unmerge(
        repos, bob.id, identifying, ADMIN, "two people after all", UNMERGED_AT, observer=feed
    )

    winner, restored = done.profile, done.restored
    assert (winner.id, restored.id) == (ann.id, bob.id)
    assert winner.identities == (customer("C-1"), email("ann@example.com"), phone)
    assert restored.identities == (customer("C-2"), email("bob@example.com"))
    assert winner.traits == {"firstName": "Ann", "tier": "gold"}, "changed after the merge: stays"
    assert restored.traits == {"firstName": "Bob", "tier": "bob"}
    assert not winner.consents["email_marketing"].granted
    assert restored.consents["email_marketing"].granted
    assert (winner.merged_from, restored.merged_into) == ((), None)
    assert winner.aggregates == folded(ann_events + ann_later, UNMERGED_AT)
    assert restored.aggregates == folded(bob_events + bob_later, UNMERGED_AT)
    assert (winner.aggregates.orders, restored.aggregates.orders) == (2, 3)
    for identity, owner in [
        (customer("C-2"), restored),
        (email("bob@example.com"), restored),
        (phone, winner),
    ]:
        found = await find_profile(repos, ProfileRef(identity=identity))
        assert found == owner
        view = await find_loyalty_view(repos, ProfileRef(identity=identity))
        assert view is not None
        assert (view.id, view.spend) == (owner.id, spend_by_day(owner.aggregates.daily))
    rebuilt = await rebuild_aggregates(repos, UNMERGED_AT, RETENTION)
    assert (rebuilt.profiles, rebuilt.changed, rebuilt.unattributed) == (2, 0, 0)
    told = [
        c
        for c in await repos.changes.for_profiles([ann.id, bob.id])
        if c.kind is ChangeKind.PROFILES_UNMERGED
    ]
    assert {
        (c.profile_id, c.payload.get("unmergedFrom"), c.payload.get("unmergedProfileId")) for c in told
    } == {
        (ann.id, None, bob.id),
        (bob.id, ann.id, None),
    }
    assert await repos.merges.get(bob.id) is None
    assert await repos.merges.into(ann.id, 10) == []
    [history] = await repos.merges.undone(bob.id)
    assert history.undo is not None
    assert (history.winner, history.undo.by, history.undo.reason) == (ann.id, "ops", "two people after all")


async def test_unmerging_twice_or_a_profile_never_merged_is_refused(
    repos: Repositories, rules: ProfileRules, tracking: TrackingRules, identifying: IdentifyRules
) -> None:
    ann, _ = await customer_with_orders(repos, rules, tracking, "ann", "C-1", T0)
    bob, _ = await customer_with_orders(repos, rules, tracking, "bob", "C-2", T0 + timedelta(hours=1))
    with pytest.raises(InvalidInput, match="not merged into another") as never:
        await unmerge(repos, ann.id, identifying, ADMIN, "why", UNMERGED_AT)
    assert never.value.field == "profileId"
    await merge_profiles(
        repos, ProfileRef(id=ann.id), ProfileRef(id=bob.id), identifying, ADMIN, "same", MERGED_AT
    )
    await unmerge(repos, bob.id, identifying, ADMIN, "two", UNMERGED_AT)
    before = await repos.profiles.get(bob.id), await repos.profiles.get(ann.id)

    with pytest.raises(InvalidInput, match="was undone") as again:
        await unmerge(repos, bob.id, identifying, ADMIN, "two", UNMERGED_AT)

    assert again.value.field == "profileId"
    assert (await repos.profiles.get(bob.id), await repos.profiles.get(ann.id)) == before


async def test_a_crash_anywhere_in_an_unmerge_is_finished_by_calling_it_again(
    repos: Repositories, rules: ProfileRules, tracking: TrackingRules, identifying: IdentifyRules
) -> None:
    ann, ann_events = await customer_with_orders(repos, rules, tracking, "ann", "C-1", T0)
    bob, bob_events = await customer_with_orders(
        repos, rules, tracking, "bob", "C-2", T0 + timedelta(hours=1)
    )
    await merge_profiles(
        repos, ProfileRef(id=ann.id), ProfileRef(id=bob.id), identifying, ADMIN, "x", MERGED_AT
    )
    later = [order("bob-o3", "bob-order-3", "45.00", MERGED_AT, email_ref("bob@example.com"))]
    await track(repos, later, tracking, MERGED_AT)

    class Crash(Exception):
        pass

    # The process dies after the loser was restored, before the winner was.
    original = repos.profiles.replace_fields
    calls = 0

    async def dying(profile: Profile, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if profile.id == ann.id:
            raise Crash
        return await original(profile, **kwargs)

    repos.profiles.replace_fields = dying  # type: ignore[method-assign]  # the crash, nothing else
    with pytest.raises(Crash):
        await unmerge(repos, bob.id, identifying, ADMIN, "two", UNMERGED_AT)
    repos.profiles.replace_fields = original  # type: ignore[method-assign]
    half = await repos.profiles.get(bob.id)
    assert half is not None
    assert half.merged_into is None
    assert await find_profile(repos, ProfileRef(identity=email("bob@example.com"))) == half

    done = await unmerge(repos, bob.id, identifying, ADMIN, "again", UNMERGED_AT)

    assert done.restored == half, "restored once"
    assert done.profile.identities == (customer("C-1"), email("ann@example.com"))
    assert done.profile.aggregates == folded(ann_events, UNMERGED_AT)
    assert done.restored.aggregates == folded(bob_events + later, UNMERGED_AT)
    [history] = await repos.merges.undone(bob.id)
    assert history.undo is not None
    assert history.undo.reason == "two", "the first call's mark stays"


async def test_a_chain_of_merges_is_undone_one_step_at_a_time(
    repos: Repositories, rules: ProfileRules, tracking: TrackingRules, identifying: IdentifyRules
) -> None:
    names = ("ann", "bob", "cem")
    people = {
        name: await customer_with_orders(repos, rules, tracking, name, f"C-{n}", T0 + timedelta(hours=n))
        for n, name in enumerate(names)
    }
    a, b, c = (people[name][0] for name in names)
    await merge_profiles(repos, ProfileRef(id=b.id), ProfileRef(id=a.id), identifying, ADMIN, "1", MERGED_AT)
    await merge_profiles(repos, ProfileRef(id=c.id), ProfileRef(id=b.id), identifying, ADMIN, "2", MERGED_AT)
    later = MERGED_AT + timedelta(hours=1)
    ann_later = [order("ann-o3", "ann-order-3", "12.00", later, email_ref("ann@example.com"))]
    await track(repos, ann_later, tracking, later)

    with pytest.raises(UnmergeOutOfOrder) as refused:
        await unmerge(repos, a.id, identifying, ADMIN, "first", UNMERGED_AT)
    assert refused.value.first == b.id
    assert f"unmerge {b.id} first" in refused.value.message

    done = await unmerge(repos, b.id, identifying, ADMIN, "b", UNMERGED_AT)
    assert done.restored.merged_from == (a.id,)
    assert {i.key for i in done.restored.identities} >= {"email:ann@example.com", "email:bob@example.com"}
    assert done.restored.aggregates == folded(people["ann"][1] + people["bob"][1] + ann_later, UNMERGED_AT)
    assert done.profile.aggregates == folded(people["cem"][1], UNMERGED_AT)
    ann_now = await find_profile(repos, ProfileRef(identity=email("ann@example.com")))
    assert ann_now is not None
    assert ann_now.id == b.id

    last = await unmerge(repos, a.id, identifying, ADMIN, "a", UNMERGED_AT + timedelta(minutes=1))
    assert last.restored.aggregates == folded(
        people["ann"][1] + ann_later, UNMERGED_AT + timedelta(minutes=1)
    )
    assert last.profile.aggregates == folded(people["bob"][1], UNMERGED_AT + timedelta(minutes=1))
    for name, (profile, _) in people.items():
        found = await find_profile(repos, ProfileRef(identity=email(f"{name}@example.com")))
        assert found is not None
        assert found.id == profile.id
    rebuilt = await rebuild_aggregates(repos, UNMERGED_AT + timedelta(minutes=1), RETENTION)
    assert (rebuilt.profiles, rebuilt.changed) == (3, 0)


async def test_segment_memberships_follow_an_unmerge(
    repos: Repositories, rules: ProfileRules, tracking: TrackingRules, identifying: IdentifyRules
) -> None:
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    segment_rules = SegmentRules(Currencies(base="EUR"), frozenset({"email_marketing"}), kept_days=400)
    buyers = SegmentInput(key="buyers", name="Buyers", rule="orders(last 365d) >= 3")
    await save_segment(repos, catalogue, buyers, segment_rules, by="ops", now=T0)
    await catalogue.settled()
    ann, _ = await customer_with_orders(repos, rules, tracking, "ann", "C-1", T0)
    bob, _ = await customer_with_orders(repos, rules, tracking, "bob", "C-2", T0 + timedelta(hours=1))
    assert await repos.segment_members.page("buyers", 10, None) == []
    await merge_profiles(
        repos, ProfileRef(id=ann.id), ProfileRef(id=bob.id), identifying, ADMIN, "x", MERGED_AT
    )
    assert [member for member, _ in await repos.segment_members.page("buyers", 10, None)] == [ann.id]

    await unmerge(repos, bob.id, identifying, ADMIN, "two", UNMERGED_AT)

    assert await repos.segment_members.page("buyers", 10, None) == []

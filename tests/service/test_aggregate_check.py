"""check_aggregates on the real store: a tracked store agrees with its log, a write behind the
services' back is named (profile or day, metric, both values), and the check writes nothing."""

from datetime import UTC, date, datetime

import pytest

from profilegate.domain.drift import Mismatch
from profilegate.domain.events import Channel, EventRules
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.shop_days import DayRollup
from profilegate.service.aggregate_check import CheckRules, Difference, Subject, check_aggregates
from profilegate.service.profiles import ProfileRules
from profilegate.service.rebuild import rebuild_aggregates
from profilegate.service.segments import SegmentCatalogue, SegmentInput, SegmentRules, save_segment
from profilegate.service.tracking import TrackingRules, track
from profilegate.storage.store import Repositories
from tests.service.raw_events import shopping_batch
from tests.service.test_rebuild import all_profiles, overwrite, profile_of

RETENTION = 400
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
CHECK = CheckRules(retention_days=RETENTION, log_days=RETENTION)
SEGMENTS = SegmentRules(Currencies(base="EUR"), frozenset({"ads"}), kept_days=RETENTION)


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules, retention_days=RETENTION)


async def shop(repos: Repositories, tracking: TrackingRules) -> tuple[Profile, Profile]:
    """Ann and Bob shopping, and a segment whose members are recorded."""
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    buyers = SegmentInput(key="buyers", name="Buyers", rule="orders(last 365d) >= 1")
    await save_segment(repos, catalogue, buyers, SEGMENTS, by="ops", now=NOW)
    await track(repos, shopping_batch("ann@example.com", NOW, "ann"), tracking, NOW)
    await track(repos, shopping_batch("bob@example.com", NOW, "bob"), tracking, NOW)
    await catalogue.settled()
    return await profile_of(repos, "ann@example.com"), await profile_of(repos, "bob@example.com")


async def test_a_tracked_store_agrees_with_its_log(repos: Repositories, tracking: TrackingRules) -> None:
    await shop(repos, tracking)

    checked = await check_aggregates(repos, CHECK, NOW)

    assert checked.differences == ()
    assert (checked.profiles, checked.events, checked.unattributed) == (2, 16, 0)
    assert checked.days > 0


async def test_a_direct_write_to_one_profiles_aggregates_is_named(
    repos: Repositories, tracking: TrackingRules
) -> None:
    ann, _ = await shop(repos, tracking)
    await overwrite(repos, ann.id, aggregates=ann.aggregates.model_copy(update={"orders": 7}))
    before = await all_profiles(repos)

    checked = await check_aggregates(repos, CHECK, NOW)

    assert checked.differences == (Difference(Subject.PROFILE, ann.id, "orders", "7", "2"),)
    assert checked.differing(Subject.PROFILE) == [ann.id]
    assert await all_profiles(repos) == before, "the check writes nothing"


async def test_a_stale_checkout_copy_membership_and_day_are_named(
    repos: Repositories, tracking: TrackingRules
) -> None:
    ann, _ = await shop(repos, tracking)
    await repos.segment_members.record(ann.id, {}, ["buyers"])
    extra = DayRollup(date(2026, 11, 20), Channel.WEB, visitors={"0123456789abcdef"})
    await repos.shop_days.add([extra])
    await repos.profiles.refresh_checkout(ann.model_copy(update={"aggregates": type(ann.aggregates)(),
                                                                 "version": ann.version + 1}))  # fmt: skip

    checked = await check_aggregates(repos, CHECK, NOW)

    found = {(d.subject, d.id, d.metric) for d in checked.differences}
    assert (Subject.PROFILE, ann.id, "segment.buyers") in found
    assert (Subject.PROFILE, ann.id, "checkout.spend") in found
    assert (Subject.PROFILE, ann.id, "identityKey.email.spend") in found
    assert (Subject.SHOP_DAY, "2026-11-20|web", "visitors") in found
    member = next(d for d in checked.differences if d.metric == "segment.buyers")
    assert (member.live, member.logged) == ("not a member", "member")


async def test_rebuild_names_the_profiles_it_changed_and_the_metrics(
    repos: Repositories, tracking: TrackingRules
) -> None:
    ann, _ = await shop(repos, tracking)
    await overwrite(repos, ann.id, aggregates=ann.aggregates.model_copy(update={"orders": 7, "gross": 1}))

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

    assert rebuilt.changes == {ann.id: [Mismatch("orders", "7", "2"), Mismatch("gross", "1", "11950")]}
    assert (await check_aggregates(repos, CHECK, NOW)).differences == ()


async def test_the_replay_guards_order_is_no_change(repos: Repositories, tracking: TrackingRules) -> None:
    ann, _ = await shop(repos, tracking)
    guard = tuple(reversed(ann.aggregates.recent_event_ids))
    await overwrite(repos, ann.id, aggregates=ann.aggregates.model_copy(update={"recent_event_ids": guard}))

    rebuilt = await rebuild_aggregates(repos, NOW, RETENTION)

    assert (rebuilt.changed, rebuilt.changes) == (0, {})
    assert (await check_aggregates(repos, CHECK, NOW)).differences == ()

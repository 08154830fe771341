"""Segment members kept on write: the records agree with the rule, follow every kind of write,
and a page of them costs the same number of store commands however many profiles there are."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo import monitoring

from profilegate.domain.events import EventRules
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.segment_predicate import holds
from profilegate.domain.segment_rules import Rule
from profilegate.domain.segments import Segment
from profilegate.service.changes import ChangeRecorder
from profilegate.service.gdpr import erase_profile
from profilegate.service.identify import IdentifyRules, identify
from profilegate.service.profiles import ProfileRules
from profilegate.service.resolve import find_profile
from profilegate.service.segment_members import MembersPath, members_path
from profilegate.service.segments import (
    SegmentCatalogue,
    SegmentInput,
    SegmentRules,
    refresh_segments,
    save_segment,
    segment_members,
)
from profilegate.service.tiers import ActivePolicy
from profilegate.service.tracking import TrackingRules, track
from profilegate.storage.store import Repositories, open_client
from tests.conformance.segment_cases import NOW, SEGMENTS, day_start
from tests.conftest import fresh_repositories, prepare_for_test
from tests.storage.test_segment_query import MS, NOWS, Scene, focuses, profiles, rules

RULES = SegmentRules(currencies=Currencies(base="EUR"), consent_purposes=frozenset({"ads"}), kept_days=400)
ADMIN = Principal(name="ops", role=Role.ADMIN)
EMAIL = normalise_identity(IdentityType.EMAIL, "ann@example.com")
ANON = normalise_identity(IdentityType.ANONYMOUS_ID, "anon-9")
LATER = [NOW, NOW + MS, day_start(-1), NOW + timedelta(days=2, milliseconds=1), NOW + timedelta(days=400)]


async def every_member(
    repos: Repositories, segment: Segment, segments: list[Segment], at: datetime
) -> list[str]:
    """Every member, three to a page, so that pages end inside and across collections."""
    found: list[str] = []
    after = None
    while True:
        page, after = await segment_members(repos, segment, segments, at, first=3, after=after)
        found.extend(profile.id for profile in page)
        if after is None:
            return found


def expected(
    population: list[Profile], segment: Segment, rules_by_key: dict[str, Rule], at: datetime
) -> list[str]:
    return sorted(p.id for p in population if holds(segment.rule, p, at, rules_by_key))


def as_segment(key: str, rule: Rule) -> Segment:
    return Segment(key=key, name=key, rule_text="drawn", rule=rule, updated_at=NOW, updated_by="t")


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[Segment], list[Profile], int, datetime]:
    focus, drawn_now = draw(focuses), draw(st.sampled_from(NOWS))
    population = [draw(profiles(number, drawn_now, focus)) for number in range(draw(st.integers(2, 10)))]
    scene = Scene(focus, drawn_now, population)
    drawn = draw(st.lists(rules(scene, list(SEGMENTS)), min_size=1, max_size=4))
    segments = [as_segment(key, rule) for key, rule in SEGMENTS.items()]
    segments += [as_segment(f"drawn-{index}", rule) for index, rule in enumerate(drawn)]
    return segments, population, draw(st.integers(0, len(population))), draw(st.sampled_from(LATER))


@settings(max_examples=25, deadline=None)
@given(scenes())
async def test_recorded_members_are_the_profiles_the_rule_holds_for(
    store_uri: str, scene: tuple[list[Segment], list[Profile], int, datetime]
) -> None:
    segments, population, backfilled, at = scene
    by_key = {segment.key: segment.rule for segment in segments}
    async with fresh_repositories(store_uri) as repos:
        catalogue = SegmentCatalogue(repos, cache_seconds=0)
        for profile in population[:backfilled]:  # there before the segments: backfilled
            await repos.profiles.insert(profile)
        for segment in segments:
            await repos.segments.save(segment)
            catalogue.backfill(segment.key, NOW)
        await catalogue.settled()
        for profile in population[backfilled:]:  # written after: recorded on write
            await repos.profiles.insert(profile)
        for segment in segments:
            assert await members_path(repos, segment) is MembersPath.RECORDED
            assert await every_member(repos, segment, segments, NOW) == expected(
                population, segment, by_key, NOW
            )

        for segment in segments:  # time passed: the records never show a profile that left
            found = await every_member(repos, segment, segments, at)
            assert set(found) <= set(expected(population, segment, by_key, at))

        await refresh_segments(repos, catalogue, at)
        for segment in segments:  # and after the refresh, those who entered by time are there
            assert await every_member(repos, segment, segments, at) == expected(
                population, segment, by_key, at
            )


async def save(repos: Repositories, catalogue: SegmentCatalogue, key: str, rule: str) -> Segment:
    segment, _ = await save_segment(
        repos, catalogue, SegmentInput(key, key, rule), RULES, by="admin", now=NOW
    )
    return segment


def order(event_id: str, at: datetime, anonymous: str | None = None) -> dict[str, object]:
    who: dict[str, object] = (
        {"anonymousId": anonymous} if anonymous else {"identity": {"type": "EMAIL", "value": EMAIL.value}}
    )
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at.isoformat(),
        "channel": "web",
        **who,
        "properties": {
            "orderId": f"o-{event_id}",
            "total": "40.00",
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "shoes", "price": "40.00"}],
        },
    }


async def recorded(repos: Repositories, key: str) -> list[str]:
    return [profile_id for profile_id, _ in await repos.segment_members.page(key, 100, None)]


async def test_a_saved_segment_is_read_pushed_down_until_its_members_are_recorded(
    repos: Repositories, rules: ProfileRules
) -> None:
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    await track(repos, [order("e-1", NOW)], TrackingRules(events=EventRules(), profiles=rules), NOW)
    segment = await save(repos, catalogue, "buyers", "orders >= 1")

    assert await members_path(repos, segment) is MembersPath.PUSHED_DOWN
    pushed_down, _ = await segment_members(repos, segment, [segment], NOW, first=50, after=None)
    await catalogue.settled()
    assert await members_path(repos, segment) is MembersPath.RECORDED
    from_records, _ = await segment_members(repos, segment, [segment], NOW, first=50, after=None)
    assert [p.id for p in from_records] == [p.id for p in pushed_down] != []

    changed = await save(repos, catalogue, "buyers", "orders >= 2")
    assert await members_path(repos, changed) is MembersPath.PUSHED_DOWN
    await catalogue.settled()
    assert await recorded(repos, "buyers") == []


async def test_tracking_erasure_and_merges_move_the_records(repos: Repositories, rules: ProfileRules) -> None:
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    await save(repos, catalogue, "buyers", "orders >= 1")
    await catalogue.settled()
    tracking = TrackingRules(events=EventRules(), profiles=rules)
    await track(repos, [order("e-anon", NOW, anonymous=ANON.value)], tracking, NOW)
    anonymous = await find_profile(repos, ProfileRef(identity=ANON))
    assert anonymous is not None
    assert await recorded(repos, "buyers") == [anonymous.id]

    await track(repos, [order("e-known", NOW)], tracking, NOW)
    known = await find_profile(repos, ProfileRef(identity=EMAIL))
    assert known is not None
    identifying = IdentifyRules(profiles=rules, blocked_identities=frozenset(), retention_days=400)
    merged = await identify(repos, ANON, (EMAIL,), {}, identifying, ADMIN, NOW)
    assert await recorded(repos, "buyers") == [merged.profile.id]

    feed = ChangeRecorder(
        repos.changes, catalogue, ActivePolicy(repos.tier_policies, cache_seconds=0), partner_purpose="ads"
    )
    await erase_profile(repos, ProfileRef(identity=EMAIL), "asked by e-mail", NOW, observer=feed)
    assert await recorded(repos, "buyers") == []


class Counter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counting = False
        self.count = 0
        self.profile_filters: list[dict[str, Any]] = []  # what the counted finds on profiles asked for
        self.member_writes = 0  # commands that wrote membership records

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.counting:
            self.count += 1
            if event.command_name == "find" and str(event.command["find"]).startswith("profiles"):
                self.profile_filters.append(event.command["filter"])
            target = str(event.command.get(event.command_name, ""))
            if event.command_name in ("update", "delete") and target.startswith("segment_members"):
                self.member_writes += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@contextmanager
def counted(counter: Counter) -> Iterator[None]:
    counter.count, counter.counting = 0, True
    try:
        yield
    finally:
        counter.counting = False


async def test_a_first_page_costs_the_same_commands_whatever_the_number_of_profiles(store_uri: str) -> None:
    counts, profile_filters = [], []
    for population in (60, 240):
        counter = Counter()
        client = open_client(store_uri, listeners=[counter])
        database = client[f"test_members_{population}"]
        try:
            repos = await prepare_for_test(database)
            catalogue = SegmentCatalogue(repos, cache_seconds=0)
            segment = await save(repos, catalogue, "even", "traits.even = true")
            await catalogue.settled()
            for number in range(population):
                profile = Profile(
                    id=f"p{number:04d}", traits={"even": number % 2 == 0}, created_at=NOW, updated_at=NOW
                )
                await repos.profiles.insert(profile)
            with counted(counter):
                page, cursor = await segment_members(repos, segment, [segment], NOW, first=25, after=None)
            assert [p.id for p in page] == [f"p{n:04d}" for n in range(0, 50, 2)]
            assert cursor is not None
            counts.append(counter.count)
            profile_filters.extend(counter.profile_filters)
        finally:
            await client.drop_database(database.name)
            await client.close()
    assert counts[0] == counts[1]
    # The profiles are read by id, the page's only: the store tests no profile against the rule.
    assert profile_filters
    assert all(set(f) == {"_id"} and set(f["_id"]) == {"$in"} for f in profile_filters)


async def test_a_write_that_changes_no_membership_writes_no_record(
    store_uri: str, rules: ProfileRules
) -> None:
    counter = Counter()
    client = open_client(store_uri, listeners=[counter])
    database = client["test_members_writes"]
    try:
        repos = await prepare_for_test(database)
        catalogue = SegmentCatalogue(repos, cache_seconds=60)
        await save(repos, catalogue, "big-buyers", "orders >= 2")
        await catalogue.settled()
        tracking = TrackingRules(events=EventRules(), profiles=rules)
        await track(repos, [order("e-1", NOW)], tracking, NOW)
        writes = []
        for event_id in ("e-2", "e-3"):  # the second order makes a member, the third changes nothing
            with counted(counter):
                counter.member_writes = 0
                await track(repos, [order(event_id, NOW)], tracking, NOW)
            writes.append(counter.member_writes)
        assert writes == [1, 0]
        assert len(await recorded(repos, "big-buyers")) == 1
    finally:
        await client.drop_database(database.name)
        await client.close()

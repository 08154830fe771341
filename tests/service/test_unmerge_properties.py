"""Merges and unmerges of random histories leave every profile with the fold of its people's events.

Three people shop through their own e-mail addresses; between their events, random merges (through
``identify`` or ``mergeProfiles``) join their profiles; then the merges are undone, newest first.
After every step, each profile's aggregates are compared with the fold of the events of the people
it holds, as ``test_rebuild`` compares tracking with a rebuild (the same fold ``rebuild-aggregates``
writes): equal but for the order of the recent event ids.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profilegate.domain.aggregates import Aggregates, fold_events
from profilegate.domain.events import EventRules, parse_event
from profilegate.domain.identities import Identity, IdentityType, normalise_identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.refs import ProfileRef
from profilegate.service.identify import IdentifyRules, identify
from profilegate.service.merges import merge_profiles, unmerge
from profilegate.service.rebuild import rebuild_aggregates
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.settings import Settings
from profilegate.storage.store import Repositories
from tests.conftest import fresh_repositories
from tests.service.raw_events import email_ref, event, order

ADMIN = Principal(name="ops", role=Role.ADMIN)
PEOPLE = ("ann", "bob", "cem")
RETENTION = 400
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
KINDS = ("order_completed", "order_returned", "order_cancelled", "product_view", "page_view", "add_to_cart")

amounts = st.integers(min_value=1, max_value=20_000).map(lambda cents: str(Decimal(cents) / 100))
tracked = st.tuples(
    st.just("track"),
    st.sampled_from(PEOPLE),
    st.sampled_from(KINDS),
    st.integers(min_value=0, max_value=300),  # days ago
    st.integers(min_value=0, max_value=2),  # which of the person's orders
    amounts,
    st.booleans(),  # by the profile id the person started with, not by e-mail
)
merged = st.tuples(
    st.just("merge"), st.sampled_from(PEOPLE), st.sampled_from(PEOPLE), st.sampled_from(("identify", "admin"))
)


@dataclass
class History:
    """What the test knows: each person's events, and who is in one profile with whom."""

    clock: datetime = NOW
    ids: dict[str, str] = field(default_factory=dict)  # the profile each person started with
    events: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {p: [] for p in PEOPLE})
    groups: list[frozenset[str]] = field(default_factory=lambda: [frozenset({p}) for p in PEOPLE])
    merges: list[tuple[str, list[frozenset[str]]]] = field(default_factory=list)  # loser id, groups before

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def group_of(self, person: str) -> frozenset[str]:
        return next(group for group in self.groups if person in group)


def raw_event(
    person: str, kind: str, days_ago: int, which: int, amount: str, number: int, profile_id: str | None
) -> dict[str, Any]:
    ref = email_ref(f"{person}@example.com") if profile_id is None else {"profileId": profile_id}
    at, order_id = NOW - timedelta(days=days_ago), f"{person}-order-{which}"
    event_id = f"{person}-{number}"
    if kind == "order_completed":  # one order is the same whatever event tells it (as in test_rebuild)
        total, placed = f"{10 + 7 * which + PEOPLE.index(person)}.50", NOW - timedelta(days=20 * which + 3)
        return order(event_id, order_id, total, placed, ref)
    if kind == "order_returned":
        return event(event_id, kind, at, ref, orderId=order_id, amount=amount)
    if kind == "order_cancelled":
        return event(event_id, kind, at, ref, orderId=order_id)
    return event(event_id, kind, at, ref, sku="A1", category="shoes")


def same(stored: Aggregates, expected: Aggregates) -> bool:
    plain = {"recent_event_ids"}
    return stored.model_dump(exclude=plain) == expected.model_dump(exclude=plain) and set(
        stored.recent_event_ids
    ) == set(expected.recent_event_ids)


async def check(repos: Repositories, history: History) -> None:
    """Each group's people reach one profile, another than every other group's, holding the
    fold of their events."""
    reached = set()
    for group in history.groups:
        profiles = {}
        for person in sorted(group):
            found = await find_profile(repos, ProfileRef(identity=email(person)))
            assert found is not None
            profiles[found.id] = found
        assert len(profiles) == 1, f"{sorted(group)} reach {sorted(profiles)}"
        [found] = profiles.values()
        ids = set(profiles)
        raws = [raw for person in group for raw in history.events[person]]
        expected = fold_events(
            [parse_event(raw, EventRules(), history.clock) for raw in raws], history.clock, RETENTION
        )
        assert same(found.aggregates, expected), sorted(group)
        reached |= ids
        if len(group) == 1:
            history.ids.setdefault(next(iter(group)), found.id)
    assert len(reached) == len(history.groups)


def email(person: str) -> Identity:
    return normalise_identity(IdentityType.EMAIL, f"{person}@example.com")


async def run_merge(
    repos: Repositories, history: History, rules: IdentifyRules, a: str, b: str, how: str
) -> None:
    if history.group_of(a) == history.group_of(b):
        return
    now = history.tick()
    if how == "identify":
        done = await identify(repos, None, (email(a), email(b)), {}, rules, ADMIN, now)
        [loser] = done.merged
    else:
        into, from_ = ProfileRef(identity=email(a)), ProfileRef(identity=email(b))
        loser = (await merge_profiles(repos, into, from_, rules, ADMIN, "same person", now)).merged_profile_id
    before = list(history.groups)
    joined = history.group_of(a) | history.group_of(b)
    history.groups = [g for g in history.groups if not g & joined] + [joined]
    history.merges.append((loser, before))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    creation=st.permutations(PEOPLE),
    steps=st.lists(st.one_of(tracked, merged), min_size=1, max_size=14),
)
async def test_merges_and_unmerges_leave_each_profile_with_its_peoples_events(
    store_uri: str, creation: list[str], steps: list[tuple[Any, ...]]
) -> None:
    profiles = Settings(mongodb_uri="mongodb://unused").profile_rules
    tracking = TrackingRules(events=EventRules(), profiles=profiles, retention_days=RETENTION)
    rules = IdentifyRules(profiles=profiles, blocked_identities=frozenset(), retention_days=RETENTION)
    history = History()
    async with fresh_repositories(store_uri) as repos:
        for person in creation:  # every person has a profile, created in this order
            steps = [("track", person, "page_view", 1, 0, "1.00", False), *steps]
        for number, step in enumerate(steps):
            if step[0] == "track":
                _, person, kind, days_ago, which, amount, by_id = step
                profile_id = history.ids.get(person) if by_id else None
                raw = raw_event(person, kind, days_ago, which, amount, number, profile_id)
                [outcome] = (await track(repos, [raw], tracking, history.tick())).results
                if outcome.status is Status.REJECTED and kind.startswith("order_"):
                    assert outcome.reason, "the order rules say why"  # an order again, an early return...
                    continue
                assert outcome.status is Status.ACCEPTED, outcome
                history.events[person].append(raw)
            else:
                await run_merge(repos, history, rules, *step[1:])
            if number >= len(PEOPLE) - 1:
                await check(repos, history)
        while history.merges:
            loser, before = history.merges.pop()
            await unmerge(repos, loser, rules, ADMIN, "two people", history.tick())
            history.groups = before
            await check(repos, history)
        rebuilt = await rebuild_aggregates(repos, history.clock, RETENTION)
        assert (rebuilt.profiles, rebuilt.unattributed) == (len(PEOPLE), 0)
        await check(repos, history)

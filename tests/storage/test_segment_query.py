"""The compiled segment query: the conformance table and random rules, through the database.

The database must match exactly the profiles the predicate holds for: the same table as
tests/domain/test_segment_predicate.py, and a property test over random rules and profiles.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo import IndexModel

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.consents import Consent
from profilegate.domain.events import Channel, EventType
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_predicate import holds, measure
from profilegate.domain.segment_rules import (
    WINDOWED,
    And,
    Comparison,
    HasConsent,
    HasExtension,
    HasIdentity,
    InSegment,
    Metric,
    MetricTest,
    Not,
    Or,
    Rule,
    Scalar,
    TraitContains,
    TraitExists,
    TraitIn,
    TraitTest,
    UsedChannel,
)
from profilegate.storage.documents import Database, Document
from profilegate.storage.layout import Layout
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.segment_query import PREFILTER_INDEXES, segment_filter
from profilegate.storage.store import Repositories, open_client, prepare
from tests.conformance.segment_cases import (
    CASES,
    NOW,
    SEGMENTS,
    TODAY,
    SegmentCase,
    consent,
    day_start,
    extension,
    metric,
    trait,
)
from tests.conftest import TEST_EVENT_SEGMENT, TEST_LAYOUT

# -- the table


def profiles_of(database: Database, layout: Layout = TEST_LAYOUT) -> PartitionedCollection:
    return layout.partitioned(database, "profiles")


async def matched(profiles: PartitionedCollection, query: Document) -> set[str]:
    return {
        str(found["_id"]) for partition in profiles.all() async for found in partition.find(query, {"_id": 1})
    }


async def create_prefilter_indexes(profiles: PartitionedCollection) -> None:
    for partition in profiles.all():
        await partition.create_indexes([IndexModel([key]) for key in PREFILTER_INDEXES])


@pytest.mark.parametrize("indexed", [False, True], ids=["no-indexes", "prefilter-indexes"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_the_database_answers_the_table(
    case: SegmentCase, indexed: bool, database: Database, repos: Repositories
) -> None:
    profiles = profiles_of(database)
    if indexed:
        await create_prefilter_indexes(profiles)
    for profile, _ in case.expectations:
        await repos.profiles.insert(profile)
    found = await matched(profiles, segment_filter(case.rule, NOW, SEGMENTS))
    assert found == {profile.id for profile, expected in case.expectations if expected}


# -- the necessary conditions


def necessary(rule: Rule) -> list[Document]:
    """The query-language conditions before the exact ``$expr`` test."""
    query = segment_filter(rule, NOW, SEGMENTS)
    return [] if "$expr" in query else query["$and"][:-1]


def test_a_window_is_narrowed_by_the_lifetime_figure_and_the_last_visit() -> None:
    assert necessary(metric("orders", ">=", 3, last=30)) == [
        {"aggregates.orders": {"$gte": 3}},
        {"aggregates.lastSeen": {"$gte": day_start(29)}},
    ]
    assert necessary(metric("net_spend", ">", 50_000, last=365)) == [
        {"aggregates.gross": {"$gt": 50_000}},
        {"aggregates.lastSeen": {"$gte": day_start(364)}},
    ]
    assert necessary(metric("events", ">", 0, last=7, event="page_view")) == [
        {"aggregates.counts.page_view": {"$gt": 0}},
        {"aggregates.lastSeen": {"$gte": day_start(6)}},
    ]


def test_a_test_that_zero_passes_is_not_narrowed() -> None:
    assert necessary(metric("orders", "<", 3, last=30)) == []
    assert necessary(metric("net_spend", ">=", -100, last=30)) == []
    assert necessary(metric("return_rate", "<", 0.2)) == []


def test_net_spend_below_zero_still_needs_a_visit_in_the_window() -> None:
    assert necessary(metric("net_spend", "<", 0, last=30)) == [
        {"aggregates.lastSeen": {"$gte": day_start(29)}}
    ]


def test_the_days_since_the_last_order_become_a_range_of_its_time() -> None:
    assert necessary(metric("days_since_last_order", "<=", 30)) == [
        {"aggregates.lastOrderAt": {"$gte": day_start(30)}}
    ]
    assert necessary(metric("days_since_last_order", ">", 30)) == [
        {"aggregates.lastOrderAt": {"$lt": day_start(30)}}
    ]
    assert necessary(metric("days_since_last_order", "=", 2)) == [
        {"aggregates.lastOrderAt": {"$lt": day_start(1), "$gte": day_start(2)}}
    ]
    assert necessary(metric("days_since_last_order", "!=", 2)) == []


def test_values_that_need_an_order_ask_for_one() -> None:
    assert necessary(metric("average_order_value", "<", 1000)) == [{"aggregates.orders": {"$gte": 1}}]
    assert necessary(metric("return_rate", ">", 0.2)) == [{"aggregates.orders": {"$gte": 1}}]


def test_presence_clauses_are_narrowed_by_their_field() -> None:
    rule = And(
        clauses=(
            extension("vip"),
            consent("email_marketing"),
            HasIdentity(identity_type=IdentityType.EMAIL),
            UsedChannel(channel=Channel.STORE),
            trait("country", "=", "DE"),
        )
    )
    assert necessary(rule) == [
        {"extensions.vip": {"$exists": True}},
        {"consents.email_marketing.granted": True},
        {"identities.type": "email"},
        {"aggregates.channels.store": {"$gt": 0}},
        {"traits.country": "DE"},
    ]


def test_trait_tests_are_narrowed_where_the_query_language_matches_a_superset() -> None:
    assert necessary(TraitIn(path=("tier",), values=("A", "B"))) == [{"traits.tier": {"$in": ["A", "B"]}}]
    assert necessary(TraitExists(path=("address", "city"))) == [{"traits.address.city": {"$exists": True}}]
    assert necessary(trait("age", ">", 30)) == []  # bracketing differs: the exact test alone
    assert necessary(TraitContains(path=("tags",), value="sale")) == []


def test_not_and_or_are_narrowed_only_by_what_holds_for_the_whole() -> None:
    assert necessary(Not(clause=extension("vip"))) == []
    assert necessary(Or(clauses=(extension("vip"), trait("vip", ">", 1)))) == []
    assert necessary(Or(clauses=(extension("vip"), consent("ads")))) == [
        {"$or": [{"extensions.vip": {"$exists": True}}, {"consents.ads.granted": True}]}
    ]


def test_a_segment_is_inlined_with_its_conditions() -> None:
    assert necessary(InSegment(key="buyers")) == [{"aggregates.orders": {"$gte": 1}}]


def test_an_unknown_segment_is_an_error() -> None:
    with pytest.raises(KeyError, match="nowhere"):
        segment_filter(InSegment(key="nowhere"), NOW, SEGMENTS)


def test_the_indexes_serve_the_conditions_on_lifetime_figures_and_times() -> None:
    fields = {
        field
        for case in CASES
        for condition in necessary(case.rule)
        for field in condition
        if field.startswith("aggregates.") and field.count(".") == 1
    }
    assert fields == {field for field, _ in PREFILTER_INDEXES}


# -- random rules and profiles
#
# Each example draws a focus: a few scalar values and one window length. Traits and rule values
# come from the same few scalars, day buckets sit on the window's edges (and today, tomorrow),
# and most windowed rules use that window, so boundaries are hit rather than missed.

NOWS = [NOW, day_start(0), day_start(-1) - timedelta(milliseconds=1)]  # 10:00, midnight, the day's last ms
MS = timedelta(milliseconds=1)
WINDOWS = [1, 7, 30, 365]
MONEY = [0, 1, 999, 1000, 1001, 2500, 4999, 5000, 50_000, -1]
COUNTS = [0, 1, 2, 3, 4]
RATES: list[float] = [0, 0.0, 0.25, 1 / 3, 0.5, 1, 1.0]
NUMBERS: list[Scalar] = [0, 1, 5, -1, 2**40, 4.5, 5.0]
STRINGS: list[Scalar] = ["", "5", "DE", "de", "sale", "big sale", "é", "$x"]
BOOLEANS: list[Scalar] = [True, False]
TRAIT_PATHS = [("age",), ("country",), ("tags",), ("flag",), ("address", "city"), ("address",), ("nothing",)]
COUNTED = [EventType.PAGE_VIEW, EventType.ORDER_RETURNED, EventType.EMAIL_CLICKED]
EXTENSIONS = ["vip", "employee"]
PURPOSES = ["email_marketing", "ads"]


@dataclass(frozen=True)
class Focus:
    scalars: list[Scalar]
    window: int

    def edge_days(self) -> list[int]:
        """Days back where a bucket enters or leaves the window, today and tomorrow (-1)."""
        return sorted({-1, 0, 1, *(d for d in (self.window - 1, self.window, self.window + 1) if d >= 0)})


# One scalar of each type at least, so that tests across types (5 and "5", true and 1) are common.
scalar_sets = st.tuples(
    *(st.sampled_from(kind) for kind in (NUMBERS, STRINGS, BOOLEANS)),
    st.lists(st.sampled_from([*NUMBERS, *STRINGS]), max_size=2),
).map(lambda drawn: list({repr(v): v for v in [*drawn[:3], *drawn[3]]}.values()))  # 1 is not True
focuses = st.builds(Focus, scalars=scalar_sets, window=st.sampled_from(WINDOWS))


@st.composite
def trait_values(draw: st.DrawFn, focus: Focus) -> Any:
    """Mostly one of the focus's scalars; else null, a list (maybe holding null), an object or a
    list of objects."""
    scalars = st.sampled_from(focus.scalars)
    if draw(st.integers(0, 3)) < 3:
        return draw(scalars)
    objects = st.dictionaries(st.just("city"), scalars, max_size=1)
    lists = st.lists(scalars | st.none(), max_size=3)
    return draw(st.one_of(st.none(), lists, objects, st.lists(objects, max_size=2)))


@dataclass(frozen=True)
class Scene:
    """What rules are drawn for: the focus, the moment, and the profiles already drawn."""

    focus: Focus
    now: datetime
    population: list[Profile]

    def values_near(self, test: MetricTest) -> list[int | float]:
        """The profiles' values of the test's metric, and one either side (for whole numbers)."""
        found = [measure(test, profile.aggregates, self.now) for profile in self.population]
        if test.metric is Metric.RETURN_RATE:
            return [value for value in found if value is not None]
        return [int(value) + step for value in found if value is not None for step in (-1, 0, 1)]


@st.composite
def metric_tests(draw: st.DrawFn, scene: Scene, kind: Metric | None = None) -> MetricTest:
    """A metric test (of ``kind``, or any), mostly over the focus window, with a value that is
    often a profile's own value or one either side."""
    kind = kind or draw(st.sampled_from(list(Metric)))
    windows = [scene.focus.window, scene.focus.window, None, *WINDOWS]
    pools: dict[Metric, Sequence[int | float]] = {
        Metric.RETURN_RATE: RATES,
        Metric.DAYS_SINCE_LAST_ORDER: [0, 1, *scene.focus.edge_days()],
        Metric.NET_SPEND: MONEY,
        Metric.GROSS_SPEND: MONEY,
        Metric.AVERAGE_ORDER_VALUE: MONEY,
    }
    pool = pools.get(kind, COUNTS)
    test = MetricTest(
        metric=kind,
        window_days=draw(st.sampled_from(windows)) if kind in WINDOWED else None,
        event_type=draw(st.sampled_from([*COUNTED, EventType.ORDER_COMPLETED]))
        if kind is Metric.EVENTS
        else None,
        op=draw(st.sampled_from(list(Comparison))),
        value=0,
    )
    near = scene.values_near(test)
    values = st.one_of(st.sampled_from(near), st.sampled_from(pool)) if near else st.sampled_from(pool)
    return test.model_copy(update={"value": draw(values)})


def leaves(scene: Scene) -> st.SearchStrategy[Rule]:
    """Trait tests, metric tests and the other leaves, a third each."""
    paths, scalars = st.sampled_from(TRAIT_PATHS), st.sampled_from(scene.focus.scalars)
    traits = st.one_of(
        st.builds(TraitTest, path=paths, op=st.sampled_from(list(Comparison)), value=scalars),
        st.builds(TraitIn, path=paths, values=st.lists(scalars, min_size=1, max_size=4).map(tuple)),
        st.builds(TraitContains, path=paths, value=scalars),
        st.builds(TraitExists, path=paths),
    )
    others = st.one_of(
        st.builds(HasExtension, name=st.sampled_from([*EXTENSIONS, "newsletter"])),
        st.builds(HasConsent, purpose=st.sampled_from(PURPOSES)),
        st.builds(HasIdentity, identity_type=st.sampled_from(list(IdentityType))),
        st.builds(UsedChannel, channel=st.sampled_from(list(Channel))),
    )
    return st.one_of(traits, metric_tests(scene), others)


def combined(children: st.SearchStrategy[Rule]) -> st.SearchStrategy[Rule]:
    clauses = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(
        st.builds(Not, clause=children), st.builds(And, clauses=clauses), st.builds(Or, clauses=clauses)
    )


def rules(scene: Scene, segment_keys: list[str]) -> st.SearchStrategy[Rule]:
    """Rules of every node kind, nested up to about four levels; segments from ``segment_keys``."""
    base = leaves(scene)
    if segment_keys:
        base = st.one_of(base, st.builds(InSegment, key=st.sampled_from(segment_keys)))
    return st.recursive(base, combined, max_leaves=8)


@st.composite
def traits(draw: st.DrawFn, focus: Focus) -> dict[str, Any]:
    """Most trait keys of the rules, with values of every shape."""
    keys = {path[0] for path in TRAIT_PATHS} - {"nothing"}
    return {key: draw(trait_values(focus)) for key in sorted(keys) if draw(st.integers(0, 3)) < 3}


@st.composite
def buckets(draw: st.DrawFn) -> DayBucket:
    orders = draw(st.sampled_from([1, 0, 2]))
    gross = sum(draw(st.lists(st.sampled_from(MONEY[:-1]), min_size=orders, max_size=orders)))
    counts = draw(st.dictionaries(st.sampled_from([kind.value for kind in COUNTED]), st.integers(1, 3)))
    return DayBucket(
        counts=counts | ({EventType.ORDER_COMPLETED.value: orders} if orders else {}),
        orders=orders,
        gross=gross,
        returned=draw(st.sampled_from([0, 0, 500])),
        cancelled=draw(st.sampled_from([0, gross, gross // 2])) if orders else 0,
        order_returns=draw(st.sampled_from([0, 1, gross // 3, gross + 1])) if orders else 0,
    )


@st.composite
def aggregates(draw: st.DrawFn, focus: Focus) -> Aggregates:
    """Consistent aggregates: lifetime figures include the buckets (and older, pruned ones); the
    profile was last seen on or after its latest bucket's day."""
    edges, anywhere = st.sampled_from(focus.edge_days()), st.integers(0, 400)
    days = st.integers(0, 3).flatmap(lambda pick: edges if pick < 3 else anywhere)  # mostly on edges
    by_back = draw(st.dictionaries(days, buckets(), max_size=4))
    total = draw(buckets()) if draw(st.booleans()) else DayBucket()
    for bucket in by_back.values():
        total = total.merged(bucket)
    last_seen = None
    if by_back:
        last_seen = day_start(min(by_back)) + draw(st.sampled_from([timedelta(0), timedelta(hours=12)]))
    within = draw(st.sampled_from([timedelta(0), timedelta(hours=10), timedelta(days=1) - MS]))
    last_order_at = day_start(draw(st.sampled_from(focus.edge_days()))) + within
    return Aggregates(
        counts=total.counts,
        channels=draw(st.dictionaries(st.sampled_from([c.value for c in Channel]), st.integers(0, 2))),
        orders=total.orders,
        gross=total.gross,
        returned=total.returned,
        cancelled=total.cancelled,
        cancelled_orders=draw(st.integers(0, total.orders)),
        returned_orders=draw(st.integers(0, total.orders)),
        last_seen=last_seen,
        last_order_at=last_order_at if total.orders else None,
        daily={(TODAY - timedelta(days=back)).isoformat(): b for back, b in by_back.items()},
    )


@st.composite
def profiles(draw: st.DrawFn, number: int, now: datetime, focus: Focus) -> Profile:
    expiries = [None, now - MS, now, now + MS, now + timedelta(days=2)]
    return Profile(
        id=f"h{number}",
        identities=tuple(
            Identity(type=kind, value=f"{kind.value}-{number}")
            for kind in draw(st.lists(st.sampled_from(list(IdentityType)), max_size=2, unique=True))
        ),
        traits=draw(traits(focus)),
        consents={
            purpose: Consent(purpose=purpose, granted=granted, at=NOW, source="web")
            for purpose, granted in draw(st.dictionaries(st.sampled_from(PURPOSES), st.booleans())).items()
        },
        extensions={
            name: ExtensionGrant(
                name=name, at=NOW, by="t", reason="r", expires_at=draw(st.sampled_from(expiries))
            )
            for name in draw(st.lists(st.sampled_from(EXTENSIONS), unique=True))
        },
        aggregates=draw(aggregates(focus)),
        created_at=NOW,
        updated_at=NOW,
    )


@dataclass(frozen=True)
class Example:
    now: datetime
    segments: dict[str, Rule]
    rules: list[Rule]
    population: list[Profile]


@st.composite
def trait_probes(draw: st.DrawFn, focus: Focus) -> list[Rule]:
    """Every test of one trait path against one of the focus's values, under every operator."""
    path, value = draw(st.sampled_from(TRAIT_PATHS)), draw(st.sampled_from(focus.scalars))
    return [
        *(TraitTest(path=path, op=op, value=value) for op in Comparison),
        TraitIn(path=path, values=tuple(focus.scalars)),
        TraitContains(path=path, value=value),
        TraitExists(path=path),
    ]


@st.composite
def examples(draw: st.DrawFn) -> Example:
    """Random rules, every trait test of one path, and every metric under every operator, over a
    random population."""
    focus, now = draw(focuses), draw(st.sampled_from(NOWS))
    population = [draw(profiles(number, now, focus)) for number in range(draw(st.integers(2, 10)))]
    scene = Scene(focus, now, population)
    segments = {**SEGMENTS, "drawn": draw(rules(scene, []))}
    drawn = draw(st.lists(rules(scene, list(segments)), min_size=1, max_size=6))
    every_metric = [
        test.model_copy(update={"op": op})
        for kind in Metric
        for test in [draw(metric_tests(scene, kind))]
        for op in Comparison
    ]
    return Example(now, segments, [*drawn, *draw(trait_probes(focus)), *every_metric], population)


@contextlib.asynccontextmanager
async def fresh_profiles(store_uri: str) -> AsyncIterator[tuple[Repositories, PartitionedCollection]]:
    """Like ``fresh_repositories``, with the profiles' collection to query directly. One
    partition: the table runs over several, and each query here costs a round trip per partition."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client = open_client(store_uri)
    try:
        layout = Layout.embedded(1, TEST_EVENT_SEGMENT)
        yield await prepare(client[name], layout), profiles_of(client[name], layout)
        await client.drop_database(name)
    finally:
        await client.close()


def clauses_of(rule: Rule) -> list[Rule]:
    """The rule and every clause in it, so that no leaf goes untested behind an ``or``."""
    match rule:
        case Not(clause=clause):
            return [rule, *clauses_of(clause)]
        case And(clauses=clauses) | Or(clauses=clauses):
            return [rule, *(inner for clause in clauses for inner in clauses_of(clause))]
        case _:
            return [rule]


@settings(max_examples=60, deadline=None)
@given(examples())
async def test_the_database_matches_what_the_predicate_holds(store_uri: str, example: Example) -> None:
    async with fresh_profiles(store_uri) as (repos, profiles):
        for profile in example.population:
            await repos.profiles.insert(profile)
        for rule in dict.fromkeys(clause for drawn in example.rules for clause in clauses_of(drawn)):
            found = await matched(profiles, segment_filter(rule, example.now, example.segments))
            expected = {p.id for p in example.population if holds(rule, p, example.now, example.segments)}
            assert found == expected, rule

"""The deepest segment chain allowed compiles to a query MongoDB accepts (nesting under 100)."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from profilegate.domain.events import Channel, EventType
from profilegate.domain.identities import IdentityType
from profilegate.domain.segment_chains import MAX_SEGMENT_CHAIN, SegmentChainRefused, check_chains
from profilegate.domain.segment_rules import (
    MAX_RULE_DEPTH,
    MAX_TRAIT_PATH,
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
    TraitContains,
    TraitExists,
    TraitIn,
    TraitTest,
    UsedChannel,
)
from profilegate.storage.documents import Document
from profilegate.storage.segment_query import segment_filter
from profilegate.storage.store import Repositories

# https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-Nested-Depth-for-BSON-Documents
MONGODB_NESTING_LIMIT = 100
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PATH = tuple(f"p{n}" for n in range(MAX_TRAIT_PATH))
LEAVES: list[Rule] = [
    TraitTest(path=PATH, op=Comparison.LE, value=3),
    TraitTest(path=PATH, op=Comparison.EQ, value="x"),
    TraitIn(path=PATH, values=("a", 1, True)),
    TraitContains(path=PATH, value="x"),
    TraitExists(path=PATH),
    HasExtension(name="vip"),
    HasConsent(purpose="ads"),
    HasIdentity(identity_type=IdentityType.EMAIL),
    UsedChannel(channel=Channel.WEB),
    MetricTest(
        metric=Metric.EVENTS, event_type=EventType.PAGE_VIEW, window_days=30, op=Comparison.GT, value=0
    ),
    MetricTest(metric=Metric.NET_SPEND, window_days=365, op=Comparison.GE, value=1000),
    MetricTest(metric=Metric.NET_SPEND, op=Comparison.GE, value=1000),
    MetricTest(metric=Metric.AVERAGE_ORDER_VALUE, op=Comparison.GE, value=1000),
    MetricTest(metric=Metric.RETURN_RATE, op=Comparison.LT, value=0.5),
    MetricTest(metric=Metric.DAYS_SINCE_LAST_ORDER, op=Comparison.LE, value=30),
]
SIBLING = TraitTest(path=PATH, op=Comparison.EQ, value=1)  # narrows in the query language too

type Level = Callable[[Rule, int], Rule]
LEVELS: dict[str, Level] = {
    "not": lambda rule, _: Not(clause=rule),
    "or": lambda rule, _: Or(clauses=(SIBLING, rule)),
    "and": lambda rule, _: And(clauses=(SIBLING, rule)),
    "or-and": lambda rule, n: Or(clauses=(SIBLING, rule)) if n % 2 else And(clauses=(SIBLING, rule)),
}


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def deepest_chain(leaf: Rule, level: Level) -> dict[str, Rule]:
    """MAX_SEGMENT_CHAIN segments, s<last> -> ... -> s0, nesting MAX_RULE_DEPTH levels in all."""
    per_segment = (MAX_RULE_DEPTH - 1) // MAX_SEGMENT_CHAIN
    first = MAX_RULE_DEPTH - 1 - per_segment * (MAX_SEGMENT_CHAIN - 1)
    segments: dict[str, Rule] = {}
    count = 0
    for index in range(MAX_SEGMENT_CHAIN):
        rule = leaf if index == 0 else InSegment(key=f"s{index - 1}")
        for _ in range(first if index == 0 else per_segment):
            rule, count = level(rule, count), count + 1
        segments[f"s{index}"] = rule
    return segments


def as_sent(query: Document) -> Document:
    """The command a count of the members sends (``ProfileRepository.count_matching``)."""
    return {"aggregate": "profiles", "pipeline": [{"$match": {"$and": [query, {"mergedInto": None}]}}]}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("leaf", LEAVES, ids=lambda leaf: leaf.kind)
def test_the_deepest_chain_allowed_compiles_under_mongodb_nesting_limit(leaf: Rule, level: str) -> None:
    segments = deepest_chain(leaf, LEVELS[level])
    top = f"s{MAX_SEGMENT_CHAIN - 1}"
    others = {key: rule for key, rule in segments.items() if key != top}
    check_chains(top, segments[top], others)  # allowed
    with pytest.raises(SegmentChainRefused):
        check_chains("above", Not(clause=InSegment(key=top)), segments)  # one level more is not
    assert depth(as_sent(segment_filter(segments[top], NOW, segments))) < MONGODB_NESTING_LIMIT


async def test_the_store_counts_the_members_of_the_deepest_chain(repos: Repositories) -> None:
    segments = deepest_chain(LEAVES[0], LEVELS["or-and"])
    query = segment_filter(segments[f"s{MAX_SEGMENT_CHAIN - 1}"], NOW, segments)
    assert await repos.profiles.count_matching(query) == 0


def test_thirty_chained_segments_would_have_nested_past_the_limit() -> None:
    """What the limits prevent: without them a chain grows the query without bound."""
    segments: dict[str, Rule] = {"s0": LEAVES[0]}
    for index in range(1, 30):
        segments[f"s{index}"] = Or(clauses=(SIBLING, And(clauses=(SIBLING, InSegment(key=f"s{index - 1}")))))
    assert depth(as_sent(segment_filter(segments["s29"], NOW, segments))) > MONGODB_NESTING_LIMIT
    with pytest.raises(SegmentChainRefused):
        check_chains("s29", segments["s29"], {k: r for k, r in segments.items() if k != "s29"})

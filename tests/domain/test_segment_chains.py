"""Chains of in_segment: no cycle, at most MAX_SEGMENT_CHAIN segments, bounded nesting."""

import pytest

from profilegate.domain.segment_chains import MAX_SEGMENT_CHAIN, SegmentChainRefused, check_chains
from profilegate.domain.segment_rules import (
    MAX_RULE_DEPTH,
    And,
    Comparison,
    HasExtension,
    InSegment,
    Metric,
    MetricTest,
    Not,
    Rule,
)

LEAF = MetricTest(metric=Metric.ORDERS, op=Comparison.GE, value=1)


def chain(length: int) -> dict[str, Rule]:
    """s0 holds a condition; every s<i> uses s<i-1>: s<length-1> -> ... -> s0."""
    return {f"s{i}": LEAF if i == 0 else InSegment(key=f"s{i - 1}") for i in range(length)}


def refusal(key: str, rule: Rule, segments: dict[str, Rule]) -> SegmentChainRefused:
    with pytest.raises(SegmentChainRefused) as refused:
        check_chains(key, rule, segments)
    return refused.value


def test_a_chain_of_the_most_segments_is_allowed() -> None:
    segments = chain(MAX_SEGMENT_CHAIN - 1)
    check_chains("top", InSegment(key=f"s{MAX_SEGMENT_CHAIN - 2}"), segments)


def test_a_longer_chain_is_refused_naming_it() -> None:
    segments = chain(MAX_SEGMENT_CHAIN)
    refused = refusal("top", InSegment(key=f"s{MAX_SEGMENT_CHAIN - 1}"), segments)
    assert refused.chain == ("top", *(f"s{i}" for i in reversed(range(MAX_SEGMENT_CHAIN))))
    assert refused.field == "input.rule"
    assert f"at most {MAX_SEGMENT_CHAIN} segments, this one {MAX_SEGMENT_CHAIN + 1}" in refused.message
    assert "top -> s7 -> s6 -> s5 -> s4 -> s3 -> s2 -> s1 -> s0" in refused.message


def test_lengthening_the_bottom_of_a_chain_is_refused_for_the_segments_above() -> None:
    # s7 -> ... -> s0 is at the limit; s0 now using another segment would make s7's chain 9
    segments = chain(MAX_SEGMENT_CHAIN) | {"base": LEAF}
    refused = refusal("s0", InSegment(key="base"), segments)
    assert refused.chain == (*(f"s{i}" for i in reversed(range(MAX_SEGMENT_CHAIN))), "base")


def test_a_cycle_already_stored_is_refused_naming_it() -> None:
    # two saves raced past the parser's cycle check: vip -> big-spenders -> vip
    stored: dict[str, Rule] = {"vip": InSegment(key="big-spenders"), "big-spenders": InSegment(key="vip")}
    refused = refusal("newsletter-vip", InSegment(key="vip"), stored)
    assert refused.chain == ("vip", "big-spenders", "vip")
    assert refused.message == "input.rule: in_segment makes a cycle: vip -> big-spenders -> vip"


def nested(levels: int, inner: Rule) -> Rule:
    """``inner`` under ``levels`` - 1 more levels of conditions."""
    rule = inner
    for _ in range(levels - 1):
        rule = Not(clause=rule)
    return rule


def test_nesting_counts_through_the_whole_chain() -> None:
    half = MAX_RULE_DEPTH // 2
    segments: dict[str, Rule] = {"deep": nested(half, LEAF)}
    # in_segment is no level of its own: it stands for the rule it names
    check_chains("top", nested(MAX_RULE_DEPTH - half + 1, InSegment(key="deep")), segments)
    refused = refusal("top", nested(MAX_RULE_DEPTH - half + 2, InSegment(key="deep")), segments)
    assert refused.chain == ("top", "deep")
    assert f"conditions nest {MAX_RULE_DEPTH + 1} levels, at most {MAX_RULE_DEPTH}" in refused.message


def test_rules_without_in_segment_or_with_short_chains_pass() -> None:
    check_chains("solo", And(clauses=(LEAF, HasExtension(name="vip"))), {})
    check_chains("pair", And(clauses=(InSegment(key="a"), InSegment(key="b"))), {"a": LEAF, "b": LEAF})

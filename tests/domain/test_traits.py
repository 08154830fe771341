"""Traits: RFC 7386 merge patch, and the limits that keep a profile storable."""

import copy
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profilegate.domain.errors import InvalidInput
from profilegate.domain.traits import TraitLimits, merge_patch, validate_traits

# RFC 7386, appendix A, every example whose target and patch are objects (traits always are).
RFC_7386_EXAMPLES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]

# The appendix's examples with a non-object target or patch, one level down (under "x").
RFC_7386_NESTED_EXAMPLES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ({"x": ["a", "b"]}, {"x": ["c", "d"]}, {"x": ["c", "d"]}),
    ({"x": {"a": "b"}}, {"x": ["c"]}, {"x": ["c"]}),
    ({"x": {"a": "foo"}}, {"x": "bar"}, {"x": "bar"}),
    ({"x": [1, 2]}, {"x": {"a": "b", "c": None}}, {"x": {"a": "b"}}),
    ({"x": "foo"}, {"x": {"a": {"b": None}, "c": 1}}, {"x": {"a": {}, "c": 1}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_7386_EXAMPLES + RFC_7386_NESTED_EXAMPLES)
def test_merge_patch_follows_rfc_7386(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = (copy.deepcopy(target), copy.deepcopy(patch))

    assert merge_patch(target, patch) == expected
    assert (target, patch) == before, "merge_patch must not change its arguments"


def test_merge_patch_keeps_untouched_nested_values() -> None:
    target = {"address": {"city": "Berlin", "zip": "10115", "geo": {"lat": 52.5, "lon": 13.4}}, "n": 1}

    merged = merge_patch(target, {"address": {"zip": None, "geo": {"lat": 52.52}}})

    assert merged == {"address": {"city": "Berlin", "geo": {"lat": 52.52, "lon": 13.4}}, "n": 1}


# -- limits -----------------------------------------------------------------------------------

LIMITS = TraitLimits(max_bytes=200, max_keys=6, max_depth=3, max_key_length=8)


@pytest.mark.parametrize(
    "traits",
    [
        {},
        {"a": {"b": {"c": 1}}},
        {"a": [[1, 2], [3]]},
        {"a": [{"b": "c"}]},
        {"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6},
        {"eightchr": True},
        {"big": 2**63 - 1, "small": -(2**63)},
        {"f": 1.5, "none": None, "s": "x" * 150},
    ],
)
def test_traits_within_limits_are_accepted(traits: dict[str, Any]) -> None:
    validate_traits(traits, LIMITS)


@pytest.mark.parametrize(
    ("traits", "field"),
    [
        # over max_bytes: the whole document is named
        ({"note": "x" * 200}, "traits"),
        # over max_keys (6, counted over all levels): the object where the 7th key appears
        ({"a": 1, "b": 2, "c": {"d": 1, "e": 2, "f": 3, "g": 4}}, "traits.c"),
        ({"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7}, "traits"),
        # deeper than max_depth (3): objects, lists and a mix
        ({"a": {"b": {"c": {}}}}, "traits.a.b.c"),
        ({"a": [[["x"]]]}, "traits.a[0][0]"),
        ({"a": [1, {"b": []}]}, "traits.a[1].b"),
        ({"a": {"b": [[]]}}, "traits.a.b[0]"),
        # keys: too long, with '.', starting with '$'
        ({"profile": {"ninechars": 1}}, "traits.profile.ninechars"),
        ({"address": {"geo.lat": 52.5}}, "traits.address.geo.lat"),
        ({"$set": 1}, "traits.$set"),
        ({"a": [{"$where": "1"}]}, "traits.a[0].$where"),
        # numbers MongoDB cannot store
        ({"n": 2**63}, "traits.n"),
        ({"n": -(2**63) - 1}, "traits.n"),
        ({"m": {"score": math.nan}}, "traits.m.score"),
        ({"s": [1.0, math.inf]}, "traits.s[1]"),
    ],
)
def test_traits_over_a_limit_name_the_offending_path(traits: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_traits(traits, LIMITS)

    assert raised.value.field == field


def test_limit_paths_start_at_the_given_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_traits({"a": {"$inc": 1}}, LIMITS, field="input.traits")

    assert raised.value.field == "input.traits.a.$inc"


def test_default_depth_counts_the_traits_object_as_the_first_of_five_levels() -> None:
    limits = TraitLimits()
    five_levels: dict[str, Any] = {"l2": {"l3": {"l4": {"l5": [1]}}}}
    six_levels: dict[str, Any] = {"l2": {"l3": {"l4": {"l5": [[1]]}}}}

    validate_traits(five_levels, limits)
    with pytest.raises(InvalidInput) as raised:
        validate_traits(six_levels, limits)
    assert raised.value.field == "traits.l2.l3.l4.l5[0]"


# -- properties -------------------------------------------------------------------------------

keys = st.text(alphabet="abcxyz_-", min_size=1, max_size=3)
scalars: st.SearchStrategy[object] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="ab äß€😀", max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)


@given(json_objects)
def test_empty_patch_is_identity(target: dict[str, Any]) -> None:
    assert merge_patch(target, {}) == target


@given(json_objects, json_objects)
def test_applying_a_patch_twice_equals_applying_it_once(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    once = merge_patch(target, patch)

    assert merge_patch(once, patch) == once


@given(json_objects, json_objects)
def test_patch_sets_its_values_and_removes_its_nulls(target: dict[str, Any], patch: dict[str, Any]) -> None:
    merged = merge_patch(target, patch)

    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
    for key, value in target.items():
        if key not in patch:
            assert merged[key] == value

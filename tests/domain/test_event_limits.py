"""The limits on an event's properties: at each limit accepted, one past it refused, naming it."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import PROPERTY_LIMITS, EventRules, parse_event
from profilegate.domain.free_form import MONGODB_MAX_DEPTH, FreeFormLimits

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LIMITS = FreeFormLimits(max_bytes=400, max_keys=8, max_depth=4, max_key_length=10, max_string_length=50)
RULES = EventRules(properties=LIMITS)


def custom(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "custom",
        "at": "2026-11-20T10:00:00Z",
        "channel": "web",
        "anonymousId": "a-1",
        "properties": {"name": "quiz", **properties},
    }


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


def padded(total_bytes: int) -> dict[str, Any]:
    """Properties that, with the event's ``name``, encode to exactly ``total_bytes`` bytes."""
    strings: list[str] = []
    while len(orjson.dumps({"name": "quiz", "p": [*strings, "x" * 50]})) <= total_bytes:
        strings.append("x" * 50)
    missing = total_bytes - len(orjson.dumps({"name": "quiz", "p": [*strings, ""]}))
    return {"p": [*strings, "x" * missing]}


AT_THE_LIMIT: list[tuple[str, dict[str, Any]]] = [
    # properties are level 1, so three levels below them reach the depth limit of 4
    ("depth", {"a": {"b": {"c": {}}}}),
    ("depth through lists", {"a": [[[1]]]}),
    ("keys", {f"k{i}": i for i in range(7)}),  # 7 + "name" = 8 keys in all
    ("key length", {"k" * 10: 1}),
    ("string length", {"s": "x" * 50}),
    ("bytes", padded(400)),
]
ONE_PAST: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "depth",
        {"a": {"b": {"c": {"d": {}}}}},
        "properties.a.b.c.d",
        "nests deeper than the limit of 4 levels",
    ),
    ("depth through lists", {"a": [[[[1]]]]}, "properties.a[0][0][0]", "nests deeper than the limit of 4"),
    ("keys", {f"k{i}": i for i in range(8)}, "properties", "more than the limit of 8 keys in all"),
    ("key length", {"k" * 11: 1}, "properties.kkkkkkkkkkk", "key longer than the limit of 10"),
    ("string length", {"s": "x" * 51}, "properties.s", "more than the limit of 50"),
    ("bytes", padded(401), "properties", "take 401 bytes as JSON, more than the limit of 400"),
    ("'$' first", {"$set": 1}, "properties.$set", "may not start with '$'"),
    ("'.' inside", {"a": {"geo.lat": 1}}, "properties.a.geo.lat", "contain '.'"),
    ("NUL inside", {"a\x00": 1}, "properties.a\\u0000", "NUL"),
    ("empty key", {"": 1}, "properties", "non-empty strings"),
    ("64-bit range", {"n": 2**63}, "properties.n", "outside the 64-bit range"),
]


@pytest.mark.parametrize(("limit", "properties"), AT_THE_LIMIT, ids=[case[0] for case in AT_THE_LIMIT])
def test_properties_at_a_limit_are_accepted(limit: str, properties: dict[str, Any]) -> None:
    event = parse_event(custom(properties), RULES, NOW)

    assert event.properties == {"name": "quiz", **properties}


@pytest.mark.parametrize(
    ("limit", "properties", "field", "reason"), ONE_PAST, ids=[case[0] for case in ONE_PAST]
)
def test_properties_one_past_a_limit_are_refused_naming_it(
    limit: str, properties: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_event(custom(properties), RULES, NOW)

    assert raised.value.field == field
    assert reason in raised.value.reason


def test_line_items_extra_fields_are_free_form_too() -> None:
    raw = {
        "type": "order_completed",
        "at": "2026-11-20T10:00:00Z",
        "channel": "web",
        "anonymousId": "a-1",
        "properties": {
            "orderId": "o1",
            "total": "5.00",
            "currency": "EUR",
            "items": [{"sku": "A", "price": "5.00", "$meta": 1}],
        },
    }

    with pytest.raises(InvalidInput) as raised:
        parse_event(raw, EventRules(), NOW)

    assert raised.value.field == "properties.items[0].$meta"


def test_the_default_limits_stay_far_inside_mongodbs() -> None:
    deepest = nested(PROPERTY_LIMITS.max_depth - 1)  # under "deep", inside properties: at the limit

    parse_event(custom({"deep": deepest}), EventRules(), NOW)
    assert PROPERTY_LIMITS.max_depth * 5 <= MONGODB_MAX_DEPTH
    assert PROPERTY_LIMITS.max_bytes * 500 <= 16 * 1024 * 1024
    with pytest.raises(InvalidInput):
        parse_event(custom({"deep": nested(120)}), EventRules(), NOW)


def ordered(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "order_completed",
        "at": "2026-11-20T10:00:00Z",
        "channel": "web",
        "anonymousId": "a-1",
        "properties": {
            "orderId": "o1",
            "total": "15.00",
            "currency": "EUR",
            "items": [line],
            "discount": "5.00",
        },
    }


def test_a_line_discount_up_to_its_price_times_quantity_is_kept_and_more_is_refused() -> None:
    line = {"sku": "SO-3PK", "price": "10.00", "quantity": 2, "discount": "5.00"}

    kept = parse_event(ordered(line), EventRules(), NOW)
    with pytest.raises(InvalidInput) as refused:
        parse_event(ordered({**line, "discount": "20.01"}), EventRules(), NOW)

    assert kept.properties["items"] == [line | {"price": "10.00", "discount": "5.00"}]
    assert refused.value.field.startswith("properties.items")
    assert "exceeds the line's price x quantity" in str(refused.value)

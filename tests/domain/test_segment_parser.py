"""The segment rule language: text to a validated syntax tree, errors at a line and column, and
canonical text back (``parse_rule(render_rule(rule)) == rule``)."""

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, EventType
from profilegate.domain.identities import IdentityType
from profilegate.domain.money import MAX_AMOUNT, Currencies
from profilegate.domain.segment_parser import RuleContext, RuleError, parse_rule, render_rule
from profilegate.domain.segment_rules import (
    MAX_LIST_VALUES,
    MAX_RULE_DEPTH,
    MAX_STRING_LENGTH,
    MAX_TRAIT_PATH,
    MONEY,
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
    RedeemedCoupon,
    Rule,
    TraitContains,
    TraitExists,
    TraitIn,
    TraitTest,
    UsedChannel,
)
from profilegate.domain.segments import MAX_RULE_LENGTH

MAX_WINDOW_DAYS = 1130
EXTENSIONS = frozenset({"newsletter", "employee", "vip", "frequent-returner", "no-reward"})
PURPOSES = frozenset({"email_marketing", "personalisation", "ads", "partner_sharing"})
SEGMENTS: dict[str, Rule] = {
    "vip-buyers": And(
        clauses=(
            MetricTest(metric=Metric.ORDERS, window_days=365, op=Comparison.GE, value=3),
            HasExtension(name="vip"),
        )
    ),
    "vip-newsletter": And(clauses=(InSegment(key="vip-buyers"), HasConsent(purpose="email_marketing"))),
    "dangling": InSegment(key="deleted-segment"),  # refers to a segment no longer stored
    # Stored segments that use the one being saved: using them in its rule would close a cycle.
    "loops-back": InSegment(key="new-segment"),
    "via-loop": Or(clauses=(InSegment(key="loops-back"), HasExtension(name="vip"))),
}
CONTEXT = RuleContext(
    currencies=Currencies(base="EUR"),
    known_extensions=EXTENSIONS,
    consent_purposes=PURPOSES,
    segments=SEGMENTS,
    self_key="new-segment",
    max_window_days=MAX_WINDOW_DAYS,
)

DESIGN_EXAMPLE = """\
orders(last 365d) >= 3 and net_spend(last 365d) > 500.00
and has_extension("newsletter") and not has_extension("employee")
and consent("email_marketing") and traits.country in ["DE", "AT", "CH"]"""
DESIGN_RULE = And(
    clauses=(
        MetricTest(metric=Metric.ORDERS, window_days=365, op=Comparison.GE, value=3),
        MetricTest(metric=Metric.NET_SPEND, window_days=365, op=Comparison.GT, value=50000),
        HasExtension(name="newsletter"),
        Not(clause=HasExtension(name="employee")),
        HasConsent(purpose="email_marketing"),
        TraitIn(path=("country",), values=("DE", "AT", "CH")),
    )
)
DESIGN_CANONICAL = (
    'orders(last 365d) >= 3 and net_spend(last 365d) > 500.00 and has_extension("newsletter")'
    ' and not has_extension("employee") and consent("email_marketing")'
    ' and traits.country in ["DE", "AT", "CH"]'
)

A = TraitExists(path=("a",))
B = TraitExists(path=("b",))
C = TraitExists(path=("c",))
D = TraitExists(path=("d",))


def metric(name: Metric, op: Comparison, value: int | float, window: int | None = None) -> MetricTest:
    return MetricTest(metric=name, window_days=window, op=op, value=value)


def events(event_type: EventType, op: Comparison, value: int, window: int | None = None) -> MetricTest:
    return MetricTest(metric=Metric.EVENTS, event_type=event_type, window_days=window, op=op, value=value)


# -- valid rules and their syntax trees ------------------------------------------------------------

VALID: list[tuple[str, Rule]] = [
    (DESIGN_EXAMPLE, DESIGN_RULE),
    # traits: comparisons, in, contains, exists; dotted and quoted paths
    ('traits.country = "DE"', TraitTest(path=("country",), op=Comparison.EQ, value="DE")),
    ('traits.country != "DE"', TraitTest(path=("country",), op=Comparison.NE, value="DE")),
    ("traits.birthYear >= 1995", TraitTest(path=("birthYear",), op=Comparison.GE, value=1995)),
    ("traits.score < -2.5", TraitTest(path=("score",), op=Comparison.LT, value=-2.5)),
    ("traits.score <= 0.0", TraitTest(path=("score",), op=Comparison.LE, value=0.0)),
    ('traits.name > "M"', TraitTest(path=("name",), op=Comparison.GT, value="M")),
    ("traits.vip = true", TraitTest(path=("vip",), op=Comparison.EQ, value=True)),
    ("traits.vip != false", TraitTest(path=("vip",), op=Comparison.NE, value=False)),
    ('traits.address.city = "Wien"', TraitTest(path=("address", "city"), op=Comparison.EQ, value="Wien")),
    ('traits."loyalty-tier" = "gold"', TraitTest(path=("loyalty-tier",), op=Comparison.EQ, value="gold")),
    ('traits."in".x exists', TraitExists(path=("in", "x"))),
    ("traits.a.b.c.d.e exists", TraitExists(path=("a", "b", "c", "d", "e"))),
    ('traits.size in ["S", 38, 38.5, true]', TraitIn(path=("size",), values=("S", 38, 38.5, True))),
    ('traits.interests contains "fashion"', TraitContains(path=("interests",), value="fashion")),
    ("traits.lucky contains 7", TraitContains(path=("lucky",), value=7)),
    (
        'traits.quote = "say \\"hi\\" \\\\o/"',
        TraitTest(path=("quote",), op=Comparison.EQ, value='say "hi" \\o/'),
    ),
    ('traits.note = ""', TraitTest(path=("note",), op=Comparison.EQ, value="")),
    ('traits.note = "zwei\nZeilen"', TraitTest(path=("note",), op=Comparison.EQ, value="zwei\nZeilen")),
    ('traits.city = "Zürich"', TraitTest(path=("city",), op=Comparison.EQ, value="Zürich")),
    # metrics: lifetime and windowed; counts, money in minor units, return rate as a float
    ("orders >= 1", metric(Metric.ORDERS, Comparison.GE, 1)),
    ("orders(last 365d) >= 3", metric(Metric.ORDERS, Comparison.GE, 3, window=365)),
    ("returns(last 30d) = 0", metric(Metric.RETURNS, Comparison.EQ, 0, window=30)),
    ("returns > 2", metric(Metric.RETURNS, Comparison.GT, 2)),
    ("net_spend > 500.00", metric(Metric.NET_SPEND, Comparison.GT, 50000)),
    ("net_spend(last 90d) <= 20", metric(Metric.NET_SPEND, Comparison.LE, 2000, window=90)),
    ("net_spend < -0.5", metric(Metric.NET_SPEND, Comparison.LT, -50)),
    ("gross_spend(last 1130d) != 99.9", metric(Metric.GROSS_SPEND, Comparison.NE, 9990, window=1130)),
    ("average_order_value >= 80", metric(Metric.AVERAGE_ORDER_VALUE, Comparison.GE, 8000)),
    ("days_since_last_order > 90", metric(Metric.DAYS_SINCE_LAST_ORDER, Comparison.GT, 90)),
    ("return_rate > 0.3", metric(Metric.RETURN_RATE, Comparison.GT, 0.3)),
    ("return_rate = 0", metric(Metric.RETURN_RATE, Comparison.EQ, 0.0)),
    ("return_rate > 1", metric(Metric.RETURN_RATE, Comparison.GT, 1.0)),
    ('events("product_view") > 10', events(EventType.PRODUCT_VIEW, Comparison.GT, 10)),
    ('events("product_view", last 7d) >= 5', events(EventType.PRODUCT_VIEW, Comparison.GE, 5, window=7)),
    ('events("store_visit",last 1d)>0', events(EventType.STORE_VISIT, Comparison.GT, 0, window=1)),
    # predicates
    ('has_extension("frequent-returner")', HasExtension(name="frequent-returner")),
    ('consent("email_marketing")', HasConsent(purpose="email_marketing")),
    ("has_identity(EMAIL)", HasIdentity(identity_type=IdentityType.EMAIL)),
    ("has_identity(LOYALTY_CARD)", HasIdentity(identity_type=IdentityType.LOYALTY_CARD)),
    ('used_channel("store")', UsedChannel(channel=Channel.STORE)),
    ('redeemed_coupon("spring-26", last 30d)', RedeemedCoupon(campaign="spring-26", window_days=30)),
    ('in_segment("vip-buyers")', InSegment(key="vip-buyers")),
    ('in_segment("vip-newsletter")', InSegment(key="vip-newsletter")),
    ('in_segment("dangling")', InSegment(key="dangling")),
    # and, or, not: precedence not > and > or; one node per chain; parentheses keep their group
    ("traits.a exists and traits.b exists and traits.c exists", And(clauses=(A, B, C))),
    ("traits.a exists or traits.b exists or traits.c exists", Or(clauses=(A, B, C))),
    ("traits.a exists or traits.b exists and traits.c exists", Or(clauses=(A, And(clauses=(B, C))))),
    ("traits.a exists and traits.b exists or traits.c exists", Or(clauses=(And(clauses=(A, B)), C))),
    ("(traits.a exists or traits.b exists) and traits.c exists", And(clauses=(Or(clauses=(A, B)), C))),
    ("(traits.a exists and traits.b exists) and traits.c exists", And(clauses=(And(clauses=(A, B)), C))),
    ("traits.a exists and (traits.b exists and traits.c exists)", And(clauses=(A, And(clauses=(B, C))))),
    ("not traits.a exists", Not(clause=A)),
    ("not not traits.a exists", Not(clause=Not(clause=A))),
    ("not traits.a exists and traits.b exists", And(clauses=(Not(clause=A), B))),
    ("not (traits.a exists and traits.b exists)", Not(clause=And(clauses=(A, B)))),
    ("not (not traits.a exists)", Not(clause=Not(clause=A))),
    ("((traits.a exists))", A),
    (
        "traits.a exists or not traits.b exists and (traits.c exists or traits.d exists)",
        Or(clauses=(A, And(clauses=(Not(clause=B), Or(clauses=(C, D)))))),
    ),
    # layout: any whitespace, across lines
    ("\n\ttraits.a exists\n\tand\n\ttraits.b exists\n", And(clauses=(A, B))),
    ("orders>=3 and(traits.a exists)", And(clauses=(metric(Metric.ORDERS, Comparison.GE, 3), A))),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_rule_parses_to_its_syntax_tree(text: str, expected: Rule) -> None:
    assert parse_rule(text, CONTEXT) == expected


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_rule_survives_rendering(text: str, expected: Rule) -> None:
    assert parse_rule(render_rule(expected), CONTEXT) == expected


CANONICAL: list[tuple[str, str]] = [
    (DESIGN_EXAMPLE, DESIGN_CANONICAL),
    ("((traits.a exists))", "traits.a exists"),
    ("not (not traits.a exists)", "not not traits.a exists"),
    (
        "(traits.a exists and traits.b exists) or traits.c exists",
        "traits.a exists and traits.b exists or traits.c exists",
    ),
    (
        "(traits.a exists or traits.b exists) or traits.c exists",
        "(traits.a exists or traits.b exists) or traits.c exists",
    ),
    (
        "traits.a exists and (traits.b exists or traits.c exists)",
        "traits.a exists and (traits.b exists or traits.c exists)",
    ),
    ("not (traits.a exists or traits.b exists)", "not (traits.a exists or traits.b exists)"),
    ("net_spend>5", "net_spend > 5.00"),
    ("return_rate >= 0", "return_rate >= 0.0"),
    ('traits."in"."x y"."a\\\\b" = "\\"q\\""', 'traits."in"."x y"."a\\\\b" = "\\"q\\""'),
    ("traits.x in [1,2.50,false]", "traits.x in [1, 2.5, false]"),
    ('events("page_view" , last 7d) > 0', 'events("page_view", last 7d) > 0'),
    ("has_identity( PHONE )", "has_identity(PHONE)"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_rendering_writes_canonical_text(text: str, canonical: str) -> None:
    assert render_rule(parse_rule(text, CONTEXT)) == canonical


def test_design_example_round_trips() -> None:
    rule = parse_rule(DESIGN_EXAMPLE, CONTEXT)

    assert rule == DESIGN_RULE
    assert render_rule(rule) == DESIGN_CANONICAL
    assert parse_rule(render_rule(rule), CONTEXT) == rule


DOCUMENTED_RULES = re.findall(
    r"```rule\n(.*?)```", (Path(__file__).parents[2] / "docs" / "segments.md").read_text(), re.S
)


@pytest.mark.parametrize("text", DOCUMENTED_RULES)
def test_every_rule_in_the_documentation_is_valid(text: str) -> None:
    rule = parse_rule(text, CONTEXT)

    assert parse_rule(render_rule(rule), CONTEXT) == rule


def test_floats_are_written_without_exponents() -> None:
    rule = TraitIn(path=("x",), values=(1e16, 1.5e-7, -0.0, 2.0))

    assert render_rule(rule) == "traits.x in [10000000000000000.0, 0.00000015, -0.0, 2.0]"
    assert parse_rule(render_rule(rule), CONTEXT) == rule


@pytest.mark.parametrize(
    ("base", "text", "minor", "canonical"),
    [
        ("EUR", "net_spend > 12.5", 1250, "net_spend > 12.50"),
        ("JPY", "net_spend > 500", 500, "net_spend > 500"),
        ("BHD", "gross_spend > 1.234", 1234, "gross_spend > 1.234"),
        ("EUR", "average_order_value < 1000000000", 100000000000, "average_order_value < 1000000000.00"),
    ],
)
def test_money_is_minor_units_of_the_base_currency(base: str, text: str, minor: int, canonical: str) -> None:
    context = dataclasses.replace(CONTEXT, currencies=Currencies(base=base))

    rule = parse_rule(text, context)

    assert isinstance(rule, MetricTest)
    assert rule.value == minor
    assert render_rule(rule, Currencies(base=base)) == canonical


def test_a_window_of_the_kept_days_is_allowed() -> None:
    rule = parse_rule(f"orders(last {MAX_WINDOW_DAYS}d) > 0", CONTEXT)

    assert rule == metric(Metric.ORDERS, Comparison.GT, 0, window=MAX_WINDOW_DAYS)


def test_rules_at_the_limits_are_accepted() -> None:
    nested = "not " * (MAX_RULE_DEPTH - 1) + "traits.a exists"
    parenthesised = "(" * 1000 + "traits.a exists" + ")" * 1000
    padded = "traits.a exists" + " " * (MAX_RULE_LENGTH - len("traits.a exists"))
    listed = "traits.a in [" + ", ".join(["1"] * MAX_LIST_VALUES) + "]"
    long_string = 'traits.a = "' + "\\\\" * MAX_STRING_LENGTH + '"'

    assert parse_rule(padded, CONTEXT) == A
    assert parse_rule(parenthesised, CONTEXT) == A
    assert parse_rule(listed, CONTEXT) == TraitIn(path=("a",), values=(1,) * MAX_LIST_VALUES)
    assert parse_rule(long_string, CONTEXT) == TraitTest(
        path=("a",), op=Comparison.EQ, value="\\" * MAX_STRING_LENGTH
    )
    rule = parse_rule(nested, CONTEXT)
    for _ in range(MAX_RULE_DEPTH - 1):
        assert isinstance(rule, Not)
        rule = rule.clause
    assert rule == A


def test_without_a_key_of_its_own_a_rule_may_use_any_segment() -> None:
    context = dataclasses.replace(CONTEXT, self_key=None)

    assert parse_rule('in_segment("loops-back")', context) == InSegment(key="loops-back")


# -- errors, each at its line and column -----------------------------------------------------------

TOO_DEEP = "traits.a exists and (" * MAX_RULE_DEPTH + "traits.b exists" + ")" * MAX_RULE_DEPTH
TOO_MANY_VALUES = "traits.a in [" + ", ".join(["1"] * (MAX_LIST_VALUES + 1)) + "]"

ERRORS: list[tuple[str, int, int, str]] = [
    # syntax
    ("   \n ", 1, 1, "the rule is empty"),
    ("orders >", 1, 9, "unexpected end of rule; expected a string, a number, true or false"),
    ("orders > 3 and\n", 1, 15, "unexpected end of rule; expected a condition"),
    ("(orders > 3", 1, 12, "unexpected end of rule; expected ')'"),
    ("traits.a in [1, 2", 1, 18, "unexpected end of rule; expected ',' or ']'"),
    ("orders > 3)", 1, 11, "unexpected ')'; expected the end of the rule"),
    ("orders > 3 or or", 1, 15, "unexpected 'or'; expected a condition"),
    (
        "traits.a exists\ntraits.b exists",
        2,
        1,
        "unexpected 'traits'; expected 'and', 'or' or the end of the rule",
    ),
    (
        "traits.a exists AND traits.b exists",
        1,
        17,
        "unexpected 'AND'; expected 'and', 'or' or the end of the rule; keywords are lower-case: and",
    ),
    (
        "traits.country = DE",
        1,
        18,
        "unexpected 'DE'; expected a string, a number, true or false;"
        ' strings are written in double quotes: "DE"',
    ),
    (
        "traits.in = 1",
        1,
        8,
        "unexpected 'in'; expected a name or a string; in is a keyword: write it in double quotes, \"in\"",
    ),
    ("traits.a = 5.", 1, 13, "unexpected '.'; expected 'and', 'or' or the end of the rule"),
    ("orders(last 30) > 1", 1, 13, "unexpected '30'; expected a number of days such as 30d"),
    ("traits = 1", 1, 8, "unexpected '='; expected '.'"),
    ("traits.a exists && traits.b exists", 1, 17, "unexpected character '&'; write 'and'"),
    ("traits.a exists || traits.b exists", 1, 17, "unexpected character '|'; write 'or'"),
    ("!traits.a exists", 1, 1, "unexpected character '!'; write 'not', or != for 'not equal'"),
    ("traits.a = 'x'", 1, 12, 'unexpected character "\'"; strings are written in double quotes'),
    ("traits.a exists @", 1, 17, "unexpected character '@'"),
    (
        "traits.größe = 38",
        1,
        10,
        "unexpected character 'ö'; names are plain ASCII; quote trait keys, e.g. traits.\"größe\"",
    ),
    ('traits.a exists and\n  traits.b = "open', 2, 14, 'a string is not closed: the closing " is missing'),
    ("traits.a == 1", 1, 10, "write = to test equality, not =="),
    # names
    ("ordrs > 3", 1, 1, "unknown metric 'ordrs'; did you mean 'orders'?"),
    (
        "orders > 3 and\n  net_spnd(last 30d) > 1",
        2,
        3,
        "unknown function 'net_spnd'; did you mean 'net_spend'?",
    ),
    ("country = 1", 1, 1, "unknown metric 'country'; a trait is written traits.country"),
    ('has_extention("vip")', 1, 1, "unknown function 'has_extention'; did you mean 'has_extension'?"),
    (
        'lifetime_value("x")',
        1,
        1,
        "unknown function 'lifetime_value'; expected one of: consent, events, gross_spend,"
        " has_extension, has_identity, in_segment, net_spend, orders, redeemed_coupon, returns, used_channel",
    ),
    # argument counts and kinds
    ("has_extension()", 1, 1, 'has_extension takes one argument, e.g. has_extension("vip")'),
    ('consent("ads", "x")', 1, 16, 'consent takes one argument, e.g. consent("email_marketing")'),
    ("has_extension(5)", 1, 15, 'has_extension takes a string in double quotes, e.g. has_extension("vip")'),
    (
        "used_channel(store)",
        1,
        14,
        'used_channel takes a string in double quotes, e.g. used_channel("store")',
    ),
    (
        'has_identity("EMAIL")',
        1,
        14,
        "has_identity takes an identity type without quotes, e.g. has_identity(EMAIL)",
    ),
    ("has_extension", 1, 1, 'has_extension needs an argument, e.g. has_extension("vip")'),
    ("orders() > 1", 1, 1, "orders takes one argument, e.g. orders(last 30d)"),
    ("orders(last 7d, last 8d) > 1", 1, 17, "orders takes one argument, e.g. orders(last 30d)"),
    ('orders("x") > 1', 1, 8, "expected a window such as last 30d, e.g. orders(last 30d)"),
    ("return_rate(last 30d) > 0.1", 1, 1, "return_rate has no window; write it without parentheses"),
    ("events > 1", 1, 1, 'events needs an event type, e.g. events("product_view", last 7d) > 0'),
    (
        "events(last 7d) > 1",
        1,
        8,
        'events takes an event type first, e.g. events("product_view", last 7d)',
    ),
    (
        'events("page_view", last 7d, 3) > 1',
        1,
        30,
        'events takes an event type and an optional window, e.g. events("product_view", last 7d)',
    ),
    (
        'events("page_view", "x") > 1',
        1,
        21,
        'expected a window such as last 30d, e.g. events("product_view", last 7d)',
    ),
    # clauses that are not whole conditions
    ("orders", 1, 1, "orders needs a comparison, e.g. orders >= 1"),
    ("orders(last 30d)", 1, 1, "orders needs a comparison, e.g. orders >= 1"),
    ('events("page_view")', 1, 1, 'events needs a comparison, e.g. events("product_view", last 7d) >= 1'),
    ("traits.a", 1, 1, "a trait needs a test: a comparison, in [...], contains or exists"),
    (
        'has_extension("vip") = true',
        1,
        22,
        "has_extension(...) is a condition by itself; it cannot be compared",
    ),
    ("orders in [1, 2]", 1, 8, '\'in\' tests a trait, e.g. traits.country in ["DE", "AT"]'),
    ("orders contains 1", 1, 8, "'contains' tests a trait, e.g. traits.interests contains \"fashion\""),
    ("days_since_last_order exists", 1, 23, "'exists' tests a trait, e.g. traits.birthYear exists"),
    # types
    (
        'orders(last 30d) > "x"',
        1,
        20,
        "orders is a count: expected a whole number of 0 or more, not a string",
    ),
    ("orders > 2.5", 1, 10, "orders is a count: expected a whole number of 0 or more, not 2.5"),
    ("returns >= -1", 1, 12, "returns is a count: expected a whole number of 0 or more, not -1"),
    (
        "days_since_last_order > true",
        1,
        25,
        "days_since_last_order is a count of days: expected a whole number of 0 or more, not true",
    ),
    ("orders > 9223372036854775808", 1, 10, "the number is out of range: whole numbers have at most 64 bits"),
    (
        "traits.a = -9223372036854775809",
        1,
        12,
        "the number is out of range: whole numbers have at most 64 bits",
    ),
    ("traits.a = " + "9" * 400 + ".0", 1, 12, "the number is out of range"),
    ("net_spend > 10.001", 1, 13, "net_spend is money in EUR, which has 2 decimals; 10.001 has 3"),
    (
        'gross_spend < "cheap"',
        1,
        15,
        "gross_spend is money in EUR: expected an amount such as 500.00, not a string",
    ),
    (
        "average_order_value > 1000000000.01",
        1,
        23,
        "1000000000.01 is out of range: amounts are at most 1000000000 EUR",
    ),
    (
        "return_rate > 1.5",
        1,
        15,
        "return_rate is the share of orders returned, from 0 to 1 (0.3 is 30%); 1.5 is outside it",
    ),
    (
        "return_rate > 30",
        1,
        15,
        "return_rate is the share of orders returned, from 0 to 1 (0.3 is 30%); 30 is outside it",
    ),
    (
        'return_rate < "high"',
        1,
        15,
        "return_rate is the share of orders returned, from 0 to 1 (0.3 is 30%):"
        " expected a number, not a string",
    ),
    ("traits.vip < true", 1, 12, "true and false compare only with = and !="),
    # known names
    ('has_extension("newsleter")', 1, 15, "unknown extension 'newsleter'; did you mean 'newsletter'?"),
    (
        'has_extension("gold")',
        1,
        15,
        "unknown extension 'gold'; expected one of: employee, frequent-returner, newsletter, no-reward, vip",
    ),
    ('consent("email")', 1, 9, "unknown consent purpose 'email'; did you mean 'email_marketing'?"),
    (
        'consent("email-marketing")',
        1,
        9,
        "unknown consent purpose 'email-marketing'; did you mean 'email_marketing'?",
    ),
    ("has_identity(email)", 1, 14, "unknown identity type 'email'; did you mean 'EMAIL'?"),
    (
        "has_identity(PASSPORT)",
        1,
        14,
        "unknown identity type 'PASSPORT';"
        " expected one of: ANONYMOUS_ID, CUSTOMER_ID, EMAIL, LOYALTY_CARD, PHONE",
    ),
    (
        'used_channel("shop")',
        1,
        14,
        "unknown channel 'shop'; expected one of: app, callcenter, email, partner, store, web",
    ),
    ('events("prodct_view") > 0', 1, 8, "unknown event type 'prodct_view'; did you mean 'product_view'?"),
    ('in_segment("vip-buyer")', 1, 12, "unknown segment 'vip-buyer'; did you mean 'vip-buyers'?"),
    # windows
    ("orders(last 0d) > 1", 1, 13, "a window is at least 1 day"),
    (
        'redeemed_coupon("spring")',
        1,
        17,
        'redeemed_coupon takes a campaign and a window, e.g. redeemed_coupon("spring", last 30d)',
    ),
    (
        "redeemed_coupon(spring, last 30d)",
        1,
        17,
        'redeemed_coupon takes a campaign first, e.g. redeemed_coupon("spring", last 30d)',
    ),
    (
        'redeemed_coupon("Spring!", last 30d)',
        1,
        17,
        "a campaign is lower-case letters, digits, '_' and '-', up to 64",
    ),
    ('redeemed_coupon("spring", last 0d)', 1, 32, "a window is at least 1 day"),
    (
        f"orders(last {MAX_WINDOW_DAYS + 1}d) > 1",
        1,
        13,
        f"a window of {MAX_WINDOW_DAYS + 1} days is longer than the {MAX_WINDOW_DAYS} days profiles keep",
    ),
    ("net_spend(last 4w) > 1", 1, 16, "a window is a number of days, e.g. last 4d"),
    # cycles through in_segment
    ('in_segment("new-segment")', 1, 12, "segment 'new-segment' cannot be in its own rule"),
    (
        'orders > 1 and in_segment("loops-back")',
        1,
        27,
        'in_segment("loops-back") makes a cycle: new-segment -> loops-back -> new-segment',
    ),
    (
        'in_segment("vip-buyers") or\nin_segment("via-loop")',
        2,
        12,
        'in_segment("via-loop") makes a cycle: new-segment -> via-loop -> loops-back -> new-segment',
    ),
    # limits
    ("x" * (MAX_RULE_LENGTH + 1), 1, 1, f"a rule has at most {MAX_RULE_LENGTH} characters, this one 4001"),
    ("not " * MAX_RULE_DEPTH + "traits.a exists", 1, 65, "conditions nest deeper than 16 levels"),
    (TOO_DEEP, 1, 21 * (MAX_RULE_DEPTH - 1) + 1, "conditions nest deeper than 16 levels"),
    (TOO_MANY_VALUES, 1, 314, "an 'in' list has at most 100 values"),
    ("traits.a in []", 1, 13, "an 'in' list needs at least one value"),
    ("traits.a.b.c.d.e.f exists", 1, 18, "a trait path has at most 5 keys"),
    (
        'traits.a = "' + "x" * (MAX_STRING_LENGTH + 1) + '"',
        1,
        12,
        "a string has at most 500 characters, this one 501",
    ),
    ('traits."' + "k" * 65 + '" exists', 1, 8, "a trait key has at most 64 characters"),
    ('traits."" exists', 1, 8, "a trait key cannot be empty"),
    ('traits."$where" exists', 1, 8, "a trait key cannot start with '$' or contain '.'"),
    ('traits."a.b" exists', 1, 8, "a trait key cannot start with '$' or contain '.'"),
    ('traits.a = "tab\\tstop"', 1, 16, "unknown escape '\\t'; strings allow only \\\" and \\\\"),
    ('traits.a = "two\nlines \\n"', 2, 7, "unknown escape '\\n'; strings allow only \\\" and \\\\"),
]


@pytest.mark.parametrize(("text", "line", "column", "problem"), ERRORS)
def test_invalid_rule_is_refused_at_its_line_and_column(
    text: str, line: int, column: int, problem: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text, CONTEXT)

    assert (caught.value.line, caught.value.column, caught.value.problem) == (line, column, problem)


def test_rule_error_is_invalid_input_on_the_rule_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule("orders > 3 and\n  ordrs > 1", CONTEXT)

    assert isinstance(caught.value, RuleError)
    assert caught.value.field == "rule"
    assert caught.value.message == "rule: line 2, column 3: unknown metric 'ordrs'; did you mean 'orders'?"


@pytest.mark.parametrize(
    ("base", "text", "column", "problem"),
    [
        ("JPY", "net_spend > 500.5", 13, "net_spend is money in JPY, which has no decimals; 500.5 has 1"),
        (
            "JPY",
            "net_spend > true",
            13,
            "net_spend is money in JPY: expected an amount such as 500, not true",
        ),
        ("BHD", "net_spend > 1.2345", 13, "net_spend is money in BHD, which has 3 decimals; 1.2345 has 4"),
    ],
)
def test_money_follows_the_base_currency_exponent(base: str, text: str, column: int, problem: str) -> None:
    context = dataclasses.replace(CONTEXT, currencies=Currencies(base=base))

    with pytest.raises(RuleError) as caught:
        parse_rule(text, context)

    assert (caught.value.line, caught.value.column, caught.value.problem) == (1, column, problem)


@pytest.mark.parametrize(
    ("extensions", "problem"),
    [
        (frozenset(), "unknown extension 'vip'; none are defined"),
        (frozenset(f"extension-{n}" for n in range(20)), "unknown extension 'vip'"),
    ],
)
def test_unknown_names_are_listed_only_when_few(extensions: frozenset[str], problem: str) -> None:
    context = dataclasses.replace(CONTEXT, known_extensions=extensions)

    with pytest.raises(RuleError) as caught:
        parse_rule('has_extension("vip")', context)

    assert caught.value.problem == problem


# -- the round trip over generated rules -----------------------------------------------------------

KEYS = st.one_of(
    st.sampled_from(["country", "birthYear", "in", "traits", "last", "loyalty-tier", "x y", "1st"]),
    st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters=".\x00"), min_size=1, max_size=12
    ).filter(lambda key: not key.startswith("$")),
)
STRINGS = st.text(st.characters(exclude_categories=["Cs"]), max_size=16)
INTEGERS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Whole decimals, no exponent: keep magnitudes that write as a few dozen digits.
FLOATS = st.floats(min_value=-1e15, max_value=1e15).filter(lambda x: x == 0 or abs(x) >= 1e-6)
SCALARS = st.one_of(STRINGS, st.booleans(), INTEGERS, FLOATS)
PATHS = st.lists(KEYS, min_size=1, max_size=MAX_TRAIT_PATH).map(tuple)
MAX_MINOR = int(MAX_AMOUNT) * 100  # EUR: two decimals


@st.composite
def trait_tests(draw: st.DrawFn) -> TraitTest:
    value = draw(SCALARS)
    ops = [Comparison.EQ, Comparison.NE] if isinstance(value, bool) else list(Comparison)
    return TraitTest(path=draw(PATHS), op=draw(st.sampled_from(ops)), value=value)


def metric_values(measured: Metric) -> st.SearchStrategy[int] | st.SearchStrategy[float]:
    if measured in MONEY:
        return st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR)
    if measured is Metric.RETURN_RATE:
        return st.floats(min_value=0, max_value=1).filter(lambda x: x == 0 or x >= 1e-6)
    return st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def metric_tests(draw: st.DrawFn) -> MetricTest:
    measured = draw(st.sampled_from(Metric))
    windows = st.none() | st.integers(min_value=1, max_value=MAX_WINDOW_DAYS)
    return MetricTest(
        metric=measured,
        window_days=draw(windows) if measured in WINDOWED else None,
        event_type=draw(st.sampled_from(EventType)) if measured is Metric.EVENTS else None,
        op=draw(st.sampled_from(Comparison)),
        value=draw(metric_values(measured)),
    )


LEAVES: st.SearchStrategy[Rule] = st.one_of(
    trait_tests(),
    st.builds(TraitIn, path=PATHS, values=st.lists(SCALARS, min_size=1, max_size=3).map(tuple)),
    st.builds(TraitContains, path=PATHS, value=SCALARS),
    st.builds(TraitExists, path=PATHS),
    metric_tests(),
    st.builds(HasExtension, name=st.sampled_from(sorted(EXTENSIONS))),
    st.builds(HasConsent, purpose=st.sampled_from(sorted(PURPOSES))),
    st.builds(HasIdentity, identity_type=st.sampled_from(IdentityType)),
    st.builds(UsedChannel, channel=st.sampled_from(Channel)),
    st.builds(
        RedeemedCoupon,
        campaign=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True),
        window_days=st.integers(min_value=1, max_value=MAX_WINDOW_DAYS),
    ),
    st.builds(InSegment, key=st.sampled_from(["vip-buyers", "vip-newsletter", "dangling"])),
)


def combined(clauses: st.SearchStrategy[Rule]) -> st.SearchStrategy[Rule]:
    groups = st.lists(clauses, min_size=2, max_size=3).map(tuple)
    return st.one_of(
        clauses.map(lambda clause: Not(clause=clause)),
        groups.map(lambda group: And(clauses=group)),
        groups.map(lambda group: Or(clauses=group)),
    )


RULES = st.recursive(LEAVES, combined, max_leaves=10)


@settings(deadline=None)
@given(RULES)
def test_every_valid_rule_survives_rendering(rule: Rule) -> None:
    text = render_rule(rule)

    assert parse_rule(text, CONTEXT) == rule
    assert render_rule(parse_rule(text, CONTEXT)) == text

"""The segment predicate: the conformance table, explanations, and what it refuses."""

from datetime import timedelta, timezone

import pytest

from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_predicate import Explanation, explain, holds
from profilegate.domain.segment_rules import And, InSegment, Not, Or, Rule
from tests.conformance.segment_cases import (
    CASES,
    NOW,
    SEGMENTS,
    SegmentCase,
    consent,
    day_start,
    extension,
    history,
    metric,
    p,
    placed,
    trait,
)

EUR = Currencies()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_predicate_answers_the_table(case: SegmentCase) -> None:
    answers = [(profile.id, holds(case.rule, profile, NOW, SEGMENTS)) for profile, _ in case.expectations]
    assert answers == [(profile.id, expected) for profile, expected in case.expectations]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_an_explanation_holds_when_the_predicate_does(case: SegmentCase) -> None:
    for profile, expected in case.expectations:
        assert explain(case.rule, profile, NOW, SEGMENTS, currencies=EUR).held is expected


def test_windows_are_utc_days_whatever_the_zone_of_now() -> None:
    rule = metric("orders", ">=", 1, last=1)
    ordered_today = p(aggregates=history({0: placed(1)}))
    berlin_after_midnight = NOW.replace(hour=23, minute=30).astimezone(timezone(timedelta(hours=1)))
    assert holds(rule, ordered_today, berlin_after_midnight, {})


def test_an_unknown_segment_is_an_error() -> None:
    with pytest.raises(KeyError, match="nowhere"):
        holds(InSegment(key="nowhere"), p(), NOW, SEGMENTS)


# -- explanations

CUSTOMER = p(
    traits={"country": "DE", "tags": ["sale"]},
    consents={"email_marketing": False},
    extensions={"vip": NOW + timedelta(days=2), "employee": NOW - timedelta(days=1)},
    aggregates=history({0: placed(2, 31_230), 40: placed(2, 20_000)}, channels={"web": 3}),
)


def explained(rule: Rule, profile: Profile = CUSTOMER) -> Explanation:
    return explain(rule, profile, NOW, SEGMENTS, currencies=EUR)


def test_a_leaf_shows_what_the_profile_had() -> None:
    assert explained(metric("orders", ">=", 3, last=30)) == Explanation(
        "orders(last 30d) >= 3", held=False, seen="2", parts=()
    )


def test_money_is_shown_in_the_base_currency() -> None:
    assert explained(metric("net_spend", ">", 30_000, last=30)).seen == "312.30"
    assert (
        explain(
            metric("net_spend", ">", 30_000, last=30), CUSTOMER, NOW, {}, currencies=Currencies(base="JPY")
        ).seen
        == "31230"
    )


def test_traits_are_shown_as_values() -> None:
    assert explained(trait("country", "=", "AT")).seen == '"DE"'
    assert explained(trait("tags", "=", "sale")).seen == '["sale"]'
    assert explained(trait("city", "=", "Köln")).seen is None


def test_presence_clauses_show_their_state() -> None:
    assert explained(extension("vip")).seen == f"set, expires {(NOW + timedelta(days=2)).isoformat()}"
    assert explained(extension("employee")).seen == f"expired {(NOW - timedelta(days=1)).isoformat()}"
    assert explained(extension("newsletter")).seen is None
    assert explained(consent("email_marketing")).seen == "denied"
    assert explained(metric("days_since_last_order", "<", 3)).seen is None


def test_an_explanation_is_the_tree_of_the_rule() -> None:
    rule = And(clauses=(metric("orders", ">=", 2, last=30), Not(clause=extension("employee"))))
    assert explained(rule) == Explanation(
        'orders(last 30d) >= 2 and not has_extension("employee")',
        held=True,
        seen=None,
        parts=(
            Explanation("orders(last 30d) >= 2", True, "2"),
            Explanation(
                'not has_extension("employee")',
                True,
                None,
                (
                    Explanation(
                        'has_extension("employee")', False, f"expired {(NOW - timedelta(days=1)).isoformat()}"
                    ),
                ),
            ),
        ),
    )


def test_every_clause_is_evaluated_even_after_the_answer_is_known() -> None:
    rule = Or(clauses=(extension("vip"), consent("email_marketing"), trait("country", "=", "DE")))
    assert [part.held for part in explained(rule).parts] == [True, False, True]


def test_a_segment_is_explained_by_its_rule() -> None:
    explanation = explained(InSegment(key="engaged"))
    assert explanation.clause == 'in_segment("engaged")'
    assert explanation.held
    (segment,) = explanation.parts
    assert segment.clause == 'in_segment("buyers") or events("email_clicked", last 30d) >= 1'
    assert [part.held for part in segment.parts] == [True, False]
    assert segment.parts[0].parts[0] == Explanation("orders >= 1", True, "4")


def test_the_last_order_is_counted_in_utc_days() -> None:
    late = p(aggregates=history(older=placed(1, 100), last_order_at=day_start(3) - timedelta(milliseconds=1)))
    assert explained(metric("days_since_last_order", "=", 4), late) == Explanation(
        "days_since_last_order = 4", True, "4"
    )


def test_the_return_rate_is_shown_as_a_share() -> None:
    returner = p(aggregates=history(older=placed(3, 300), returned_orders=1))
    assert explained(metric("return_rate", ">", 0.3), returner).seen == "0.3333"

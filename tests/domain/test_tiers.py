"""Tier evaluation at its boundaries: thresholds, windows, retention, return lock, overrides."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import EllipsisType
from typing import Any

import pytest

from profilegate.domain.aggregates import Aggregates, apply_events, fold_events
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import EventRules, parse_event
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.tiers import (
    Benefit,
    BenefitType,
    Loyalty,
    LoyaltyReason,
    TierPolicy,
    check_draft,
    check_retention_fits,
    day_number,
    evaluate_loyalty,
    spend_by_day,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
EXTENSIONS = ("no-reward", "employee", "status-match-gold")
FIXTURE = Path(__file__).parents[2] / "fixtures" / "tier_policy.json"


def policy(**changes: Any) -> TierPolicy:
    raw: dict[str, Any] = {
        "metric": "NET_SPEND",
        "windowDays": 365,
        "returnLockDays": 0,
        "retention": {"kind": "NONE"},
        "tiers": [
            {"name": "MEMBER", "threshold": "0"},
            {"name": "SILVER", "threshold": "250.00", "benefits": [{"key": "discount_percent", "value": 2}]},
            {"name": "GOLD", "threshold": "1000.00", "benefits": [{"key": "free_shipping", "value": True}]},
        ],
        "overrides": [
            {"extension": "no-reward", "effect": "NO_TIER"},
            {"extension": "employee", "effect": "FIXED_TIER", "tier": "SILVER"},
            {"extension": "status-match-gold", "effect": "FLOOR", "tier": "GOLD"},
        ],
    } | changes
    draft = check_draft(raw, "EUR", EXTENSIONS)
    return TierPolicy(**draft.model_dump(), version=1, currency="EUR", published_at=NOW, published_by="admin")


def ago(days: int) -> int:
    return day_number(TODAY - timedelta(days=days))


def iso_day(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def grant(name: str, expires_at: datetime | None = None) -> ExtensionGrant:
    return ExtensionGrant(
        name=name, at=NOW - timedelta(days=3), by="ops", reason="checked", expires_at=expires_at
    )


def tier_name(loyalty: Loyalty) -> str | None:
    return None if loyalty.tier is None else loyalty.tier.name


ROLLING_30 = {"retention": {"kind": "ROLLING", "days": 30}}
NEXT_YEAR = {"retention": {"kind": "END_OF_NEXT_YEAR"}}
LOCK_30 = {"returnLockDays": 30}


@pytest.mark.parametrize(
    ("changes", "spend", "now", "tier", "reason"),
    [
        pytest.param({}, {}, NOW, "MEMBER", LoyaltyReason.ENTRY, id="no orders: the entry tier"),
        pytest.param({}, {ago(0): 100_000}, NOW, "GOLD", LoyaltyReason.THRESHOLD, id="exactly at GOLD"),
        pytest.param({}, {ago(0): 99_999}, NOW, "SILVER", LoyaltyReason.THRESHOLD, id="one cent below GOLD"),
        pytest.param({}, {ago(0): 24_999}, NOW, "MEMBER", LoyaltyReason.ENTRY, id="one cent below SILVER"),
        pytest.param({}, {ago(364): 100_000}, NOW, "GOLD", LoyaltyReason.THRESHOLD, id="last day of window"),
        pytest.param({}, {ago(365): 100_000}, NOW, "MEMBER", LoyaltyReason.ENTRY, id="a day past the window"),
        pytest.param(
            {}, {ago(3): 60_000, ago(200): 40_000}, NOW, "GOLD", LoyaltyReason.THRESHOLD, id="days add up"
        ),
        # rolling retention of 30 days: GOLD left the window on day -11 (the order of day -375)
        pytest.param(ROLLING_30, {ago(375): 100_000}, NOW, "GOLD", LoyaltyReason.RETAINED, id="rolling kept"),
        pytest.param(
            ROLLING_30, {ago(394): 100_000}, NOW, "GOLD", LoyaltyReason.RETAINED, id="rolling last day"
        ),
        pytest.param(
            ROLLING_30, {ago(395): 100_000}, NOW, "MEMBER", LoyaltyReason.ENTRY, id="rolling day after"
        ),
        pytest.param(
            ROLLING_30,
            {ago(375): 100_000, ago(10): 30_000},
            NOW,
            "GOLD",
            LoyaltyReason.RETAINED,
            id="rolling keeps GOLD over today's SILVER",
        ),
        # until the end of next year: GOLD was last reached on 2025-05-31 (order of 2024-06-01)
        pytest.param(
            NEXT_YEAR,
            {day_number(date(2024, 6, 1)): 100_000},
            datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
            "GOLD",
            LoyaltyReason.RETAINED,
            id="end of next year: last day",
        ),
        pytest.param(
            NEXT_YEAR,
            {day_number(date(2024, 6, 1)): 100_000},
            datetime(2027, 1, 1, tzinfo=UTC),
            "MEMBER",
            LoyaltyReason.ENTRY,
            id="end of next year: day after",
        ),
        # return lock of 30 days: an order counts from its 30th day on
        pytest.param(
            LOCK_30, {ago(29): 100_000}, NOW, "MEMBER", LoyaltyReason.ENTRY, id="inside return window"
        ),
        pytest.param(
            LOCK_30, {ago(30): 100_000}, NOW, "GOLD", LoyaltyReason.THRESHOLD, id="return window past"
        ),
        pytest.param(
            LOCK_30, {ago(394): 100_000}, NOW, "GOLD", LoyaltyReason.THRESHOLD, id="lock shifts window"
        ),
        pytest.param(LOCK_30, {ago(395): 100_000}, NOW, "MEMBER", LoyaltyReason.ENTRY, id="lock window end"),
    ],
)
def test_tier_at_the_boundaries(
    changes: dict[str, Any], spend: dict[int, int], now: datetime, tier: str, reason: LoyaltyReason
) -> None:
    loyalty = evaluate_loyalty(policy(**changes), spend, {}, now)
    assert (tier_name(loyalty), loyalty.reason) == (tier, reason)


def test_threshold_answer_says_how_long_and_what_is_next() -> None:
    loyalty = evaluate_loyalty(policy(), {ago(100): 30_000}, {}, NOW)
    assert tier_name(loyalty) == "SILVER"
    assert loyalty.valid_until == TODAY + timedelta(days=264)  # the order's last day in the window
    assert (loyalty.next_tier and loyalty.next_tier.name, loyalty.to_next_tier) == ("GOLD", 70_000)
    assert loyalty.spend == 30_000
    assert loyalty.benefits == (Benefit(key="discount_percent", value=2),)
    assert "net spend 300.00 EUR over the last 365 days reaches SILVER" in loyalty.explanation


def test_retained_tier_is_valid_until_its_retention_ends() -> None:
    rolling = evaluate_loyalty(policy(**ROLLING_30), {ago(375): 100_000}, {}, NOW)
    assert rolling.valid_until == TODAY + timedelta(days=19)
    assert (rolling.spend, rolling.to_next_tier) == (0, None)
    # GOLD holds through 2027-11-09 (the order's last day in the window): kept to the end of 2028
    yearly = evaluate_loyalty(policy(**NEXT_YEAR), {ago(10): 100_000}, {}, NOW)
    assert (yearly.reason, yearly.valid_until) == (LoyaltyReason.THRESHOLD, date(2028, 12, 31))


def test_the_entry_tier_never_lapses_and_the_top_tier_has_nothing_next() -> None:
    entry = evaluate_loyalty(policy(), {}, {}, NOW)
    assert (entry.valid_until, entry.next_tier and entry.next_tier.name, entry.to_next_tier) == (
        None,
        "SILVER",
        25_000,
    )
    top = evaluate_loyalty(policy(), {ago(1): 500_000}, {}, NOW)
    assert (top.next_tier, top.to_next_tier) == (None, None)


def test_pending_orders_are_reported_but_not_counted() -> None:
    loyalty = evaluate_loyalty(policy(**LOCK_30), {ago(5): 40_000, ago(40): 30_000}, {}, NOW)
    assert (tier_name(loyalty), loyalty.spend, loyalty.pending) == ("SILVER", 30_000, 40_000)


def event(kind: str, event_id: str, day: str, properties: dict[str, Any]) -> Any:
    raw = {
        "id": event_id,
        "type": kind,
        "at": f"{day}T12:00:00Z",
        "channel": "web",
        "identity": {"type": "EMAIL", "value": "ann@example.com"},
        "properties": properties,
    }
    return parse_event(raw, EventRules(), NOW)


ORDER = {
    "orderId": "o-1",
    "total": "1000.00",
    "currency": "EUR",
    "items": [{"sku": "A1", "category": "coats", "price": "1000.00", "quantity": 1}],
}


def test_a_return_drops_the_customer_below_a_threshold_from_the_orders_day() -> None:
    order = event("order_completed", "e-1", iso_day(60), ORDER)
    refund = event("order_returned", "e-2", iso_day(2), {"orderId": "o-1", "amount": "0.01"})
    before, _ = apply_events(Aggregates(), [order], NOW, 1130)
    after, _ = apply_events(before, [refund], NOW, 1130)
    assert tier_name(evaluate_loyalty(policy(**LOCK_30), spend_by_day(before.daily), {}, NOW)) == "GOLD"
    dropped = evaluate_loyalty(policy(**LOCK_30), spend_by_day(after.daily), {}, NOW)
    assert (tier_name(dropped), dropped.spend, dropped.to_next_tier) == ("SILVER", 99_999, 1)
    # the same when a rebuild folds the log (a return that arrived before its order is refused)
    folded = fold_events([refund, order], NOW, 1130)
    assert spend_by_day(folded.daily) == spend_by_day(after.daily) == {ago(60): 99_999}


GOLD_SPEND = {ago(1): 100_000}
LATER = NOW + timedelta(days=30)
EARLIER = NOW - timedelta(seconds=1)


@pytest.mark.parametrize(
    ("spend", "extensions", "tier", "reason", "valid_until"),
    [
        pytest.param(
            GOLD_SPEND, [grant("no-reward")], None, LoyaltyReason.NO_TIER_BY_EXTENSION, None, id="no-reward"
        ),
        pytest.param(
            GOLD_SPEND,
            [grant("no-reward", EARLIER)],
            "GOLD",
            LoyaltyReason.THRESHOLD,
            ...,
            id="expired no-reward",
        ),
        pytest.param(
            {}, [grant("employee", LATER)], "SILVER", LoyaltyReason.FIXED_BY_EXTENSION, LATER, id="employee"
        ),
        pytest.param(
            GOLD_SPEND,
            [grant("employee")],
            "SILVER",
            LoyaltyReason.FIXED_BY_EXTENSION,
            None,
            id="fixed below",
        ),
        pytest.param(
            {},
            [grant("status-match-gold", LATER)],
            "GOLD",
            LoyaltyReason.FLOOR_BY_EXTENSION,
            LATER,
            id="floor",
        ),
        pytest.param(
            {ago(1): 400_000} | {ago(2): 100_000},
            [grant("status-match-gold", LATER)],
            "GOLD",
            LoyaltyReason.THRESHOLD,
            ...,
            id="floor below the earned tier",
        ),
        pytest.param(
            {}, [grant("status-match-gold", EARLIER)], "MEMBER", LoyaltyReason.ENTRY, None, id="floor expired"
        ),
        pytest.param(
            {},
            [grant("no-reward"), grant("employee"), grant("status-match-gold")],
            None,
            LoyaltyReason.NO_TIER_BY_EXTENSION,
            None,
            id="no-reward beats all",
        ),
        pytest.param(
            {},
            [grant("employee"), grant("status-match-gold")],
            "SILVER",
            LoyaltyReason.FIXED_BY_EXTENSION,
            None,
            id="fixed beats floor",
        ),
    ],
)
def test_overrides_and_their_precedence(
    spend: dict[int, int],
    extensions: list[ExtensionGrant],
    tier: str | None,
    reason: LoyaltyReason,
    valid_until: datetime | EllipsisType | None,
) -> None:
    loyalty = evaluate_loyalty(policy(), spend, {g.name: g for g in extensions}, NOW)
    assert (tier_name(loyalty), loyalty.reason) == (tier, reason)
    if valid_until is not ...:
        assert loyalty.valid_until == (None if valid_until is None else valid_until.date())
    if reason.name.endswith("_BY_EXTENSION"):
        assert loyalty.decided_by == extensions[0].name
        assert "set by ops: checked" in loyalty.explanation


def test_excluded_customer_has_no_benefits_and_no_next_tier() -> None:
    loyalty = evaluate_loyalty(policy(), GOLD_SPEND, {"no-reward": grant("no-reward")}, NOW)
    assert (loyalty.benefits, loyalty.next_tier, loyalty.to_next_tier) == ((), None, None)
    assert loyalty.spend == 100_000  # the metric is still shown


@pytest.mark.parametrize(
    ("euros_spent", "points", "tier"),
    [(66_667, 1000, "GOLD"), (66_666, 999, "SILVER"), (16_667, 250, "SILVER"), (16_666, 249, "MEMBER")],
)
def test_points_policy_compares_exactly(euros_spent: int, points: int, tier: str) -> None:
    points_policy = policy(
        metric="POINTS",
        pointsPerUnit="1.5",
        tiers=[
            {"name": "MEMBER", "threshold": "0"},
            {"name": "SILVER", "threshold": "250"},
            {"name": "GOLD", "threshold": "1000"},
        ],
    )
    loyalty = evaluate_loyalty(points_policy, {ago(0): euros_spent}, {}, NOW)
    assert (loyalty.points, tier_name(loyalty)) == (points, tier)


@pytest.mark.parametrize(
    ("changes", "cart", "tier"),
    [({}, 10_000, "GOLD"), ({}, 9_999, "SILVER"), (LOCK_30, 10_000, "GOLD")],
)
def test_what_if_counts_the_cart_as_kept(changes: dict[str, Any], cart: int, tier: str) -> None:
    loyalty = evaluate_loyalty(policy(**changes), {ago(40): 90_000}, {}, NOW, cart=cart)
    assert tier_name(loyalty) == tier


def test_evaluation_does_not_depend_on_order_of_days_or_empty_days() -> None:
    spend = {ago(d): 1_000 for d in range(0, 300, 3)}
    reordered = dict(reversed(spend.items())) | {ago(1): 0}
    assert evaluate_loyalty(policy(), spend, {}, NOW) == evaluate_loyalty(policy(), reordered, {}, NOW)


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"tiers": [{"name": "A", "threshold": "5"}]}, "policy.tiers[0].threshold", "entry tier"),
        (
            {"tiers": [{"name": "A", "threshold": "0"}, {"name": "B", "threshold": "0"}]},
            "policy.tiers[1].threshold",
            "must ascend",
        ),
        (
            {"tiers": [{"name": "A", "threshold": "0"}, {"name": "A", "threshold": "1"}]},
            "policy.tiers[1].name",
            "twice",
        ),
        (
            {"tiers": [{"name": "A", "threshold": "0"}, {"name": "B", "threshold": "1.001"}]},
            "policy.tiers[1].threshold",
            "2 decimals",
        ),
        ({"tiers": [{"name": "gold", "threshold": "0"}]}, "policy.tiers[0].name", "upper-case letters"),
        ({"tiers": []}, "policy.tiers", "needs at least 1 entry"),
        ({"windowDays": 0}, "policy.windowDays", "must be at least 1"),
        ({"retention": {"kind": "ROLLING"}}, "policy.retention", "days is required"),
        ({"metric": "POINTS"}, "policy", "pointsPerUnit is required"),
        (
            {"overrides": [{"extension": "vip", "effect": "NO_TIER"}]},
            "policy.overrides[0].extension",
            "not defined",
        ),
        (
            {"overrides": [{"extension": "employee", "effect": "FLOOR", "tier": "BRONZE"}]},
            "policy.overrides[0].tier",
            "not a tier",
        ),
        (
            {"overrides": [{"extension": "employee", "effect": "FLOOR"}]},
            "policy.overrides[0]",
            "tier is required",
        ),
        (
            {
                "tiers": [
                    {"name": "A", "threshold": "0"},
                    {
                        "name": "B",
                        "threshold": "1",
                        "benefits": [{"key": "x", "value": 1}, {"key": "x", "value": 2}],
                    },
                ]
            },
            "policy.tiers[1]",
            "unique",
        ),
        ({"colour": "red"}, "policy.colour", "is not a field of this input"),
        (
            {"tiers": [{"name": "A", "threshold": "0", "benefits": [{"key": "x", "value": {"a": 1}}]}]},
            "policy.tiers[0].benefits[0].value",
            "must be true or false, a whole number, a decimal number or a text",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(changes: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        policy(**changes)
    assert refused.value.field == field
    assert says in refused.value.reason


def test_a_policy_that_looks_further_back_than_profiles_keep_is_refused() -> None:
    draft = policy(**NEXT_YEAR, **LOCK_30)
    assert draft.days_needed == 730 + 30 + 365
    check_retention_fits(draft, 1125)
    with pytest.raises(InvalidInput, match="keep 1124 days"):
        check_retention_fits(draft, 1124)


def test_benefits_keep_their_type() -> None:
    values = {
        b.key: b
        for b in policy(
            overrides=[],
            tiers=[
                {
                    "name": "A",
                    "threshold": "0",
                    "benefits": [
                        {"key": "free_shipping", "value": True},
                        {"key": "discount_percent", "value": 5},
                        {"key": "voucher", "value": 12.5},
                        {"key": "line", "value": "platinum"},
                    ],
                }
            ],
        )
        .tiers[0]
        .benefits
    }
    assert {key: b.type for key, b in values.items()} == {
        "free_shipping": BenefitType.BOOLEAN,
        "discount_percent": BenefitType.INTEGER,
        "voucher": BenefitType.DECIMAL,
        "line": BenefitType.TEXT,
    }


def test_the_default_policy_in_fixtures_is_valid_and_ascending() -> None:
    raw = json.loads(FIXTURE.read_text())
    draft = check_draft(raw, "EUR", EXTENSIONS)
    assert [t.name for t in draft.tiers] == ["MEMBER", "SILVER", "GOLD", "PLATINUM"]
    check_retention_fits(draft, 1130)

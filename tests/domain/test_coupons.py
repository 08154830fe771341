"""Coupon codes, expiry and count limits, the redemption rule, and the median of days to redeem."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from profilegate.domain.coupons import (
    CODE_ALPHABET,
    CODE_LENGTH,
    Coupon,
    RedemptionRule,
    check_count,
    check_expiry,
    is_code,
    median_days,
    new_code,
    normalise_code,
    refusal,
)
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def coupon(rule: RedemptionRule = RedemptionRule.ONCE, **changes: object) -> Coupon:
    base = Coupon(
        code="ABCDEFGHJKMN",
        campaign="spring",
        rule=rule,
        channel=Channel.EMAIL,
        profile_id="p1",
        issued_at=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=1),
    )
    return base.model_copy(update=changes)


def test_a_code_uses_the_unambiguous_alphabet_only() -> None:
    code = new_code(random.Random(1).choice)

    assert len(code) == CODE_LENGTH
    assert is_code(code)
    assert not set("01OIL") & set(CODE_ALPHABET)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("abcd-efgh-jkmn", "ABCDEFGHJKMN"), (" ABCD EFGH JKMN ", "ABCDEFGHJKMN"), ("welcome10", "WELCOME10")],
)
def test_a_code_is_read_as_typed(typed: str, stored: str) -> None:
    assert normalise_code(typed) == stored


@pytest.mark.parametrize("value", ["WELCOME10", "ABCDEFGHJKM0", "ABCDEFGHJKMNP"])
def test_what_cannot_be_one_of_our_codes(value: str) -> None:
    assert not is_code(value)


@pytest.mark.parametrize(
    ("expires_at", "problem"),
    [
        (datetime(2026, 12, 1), "expiresAt: needs a time zone, e.g. 2027-01-31T23:59:59Z"),
        (NOW, "expiresAt: lies in the past"),
        (NOW + timedelta(days=1096), "expiresAt: lies more than 1095 days ahead"),
    ],
)
def test_an_expiry_is_checked(expires_at: datetime, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_expiry(expires_at, NOW)
    assert caught.value.message == problem


@pytest.mark.parametrize("count", [0, 1001])
def test_a_count_is_capped(count: int) -> None:
    with pytest.raises(InvalidInput, match="count: must be 1 to 1000"):
        check_count(count)


@pytest.mark.parametrize(
    ("stored", "order_id", "at", "needs_profile", "reason"),
    [
        (coupon(), "o1", NOW, False, None),
        (coupon(redemptions=1, orders=("o0",)), "o1", NOW, False, "already redeemed"),
        (coupon(redemptions=1, orders=("o1",)), "o1", NOW, False, None),  # the same order again
        (coupon(RedemptionRule.COUNTED, redemptions=3, orders=("o0",)), "o1", NOW, False, None),
        (coupon(), "o1", NOW + timedelta(days=1), False, "expired at"),
        (coupon(), "o1", NOW - timedelta(days=2), False, "before the coupon was issued"),
        (coupon(profile_id=None), "o1", NOW, True, "needs an identity"),
        (coupon(profile_id=None), "o1", NOW, False, None),
        (None, "o1", NOW, False, "no such coupon"),
    ],
)
def test_the_redemption_rule(
    stored: Coupon | None, order_id: str, at: datetime, needs_profile: bool, reason: str | None
) -> None:
    found = refusal(stored, "ABCDEFGHJKMN", order_id, at, needs_profile=needs_profile)

    assert (found is None) == (reason is None)
    assert reason is None or (found is not None and reason in found)


@pytest.mark.parametrize(
    ("days", "median"),
    [({}, None), ({3: 1}, 3.0), ({1: 1, 5: 1}, 3.0), ({0: 2, 10: 1}, 0.0), ({2: 1, 4: 2, 9: 1}, 4.0)],
)
def test_the_median_of_days_to_redeem(days: dict[int, int], median: float | None) -> None:
    assert median_days(days) == median

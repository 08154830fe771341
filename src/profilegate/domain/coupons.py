"""Coupon codes, the campaigns they belong to, and whether a code may be redeemed.

A code is ``CODE_LENGTH`` characters of ``CODE_ALPHABET`` (digits and capitals without the
look-alikes 0/O, 1/I/L), drawn by the caller from a secure source: 31^12 is about 2^59 codes,
so guessing one that was issued is hopeless even for a shop that issues millions. Codes are
read case-insensitively, with spaces and hyphens ignored, as a cashier types them.
"""

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.events import Channel
from profilegate.domain.expected_forms import form

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
# Anonymous codes made by one issueCoupons call (one bulk insert).
MAX_COUPONS_PER_CALL = 1_000
# How far ahead a coupon may expire.
MAX_LIFETIME = timedelta(days=1095)
# Orders whose redemption a coupon remembers, so a replayed order is not counted again.
RECENT_ORDERS = 500
CAMPAIGN_FORM = "lower-case letters, digits, '_' and '-', 1 to 64, starting with a letter or digit"
CAMPAIGN_PATTERN = re.compile(form(r"^[a-z0-9][a-z0-9_-]{0,63}$", CAMPAIGN_FORM))
_TYPED_NOISE = re.compile(r"[\s-]+")

CampaignName = Annotated[str, Field(pattern=CAMPAIGN_PATTERN.pattern)]


class RedemptionRule(StrEnum):
    """``ONCE``: a code redeems one order, a second is refused. ``COUNTED``: every order with
    the code redeems it and is counted."""

    ONCE = "once"
    COUNTED = "counted"


class Campaign(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: CampaignName
    rule: RedemptionRule = RedemptionRule.ONCE
    description: Annotated[str, Field(max_length=1024)] = ""
    created_at: datetime


class Coupon(BaseModel):
    """An issued code. ``profile_id``: who it was handed to, None for an anonymous code."""

    model_config = ConfigDict(frozen=True)

    code: str
    campaign: str
    rule: RedemptionRule
    channel: Channel
    profile_id: str | None
    issued_at: datetime
    expires_at: datetime
    redemptions: int = 0
    revenue: int = 0
    first_redeemed_at: datetime | None = None
    orders: tuple[str, ...] = ()


class CouponRefused(DomainError):
    """A code that may not be redeemed by this order; ``reason`` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"coupon {code}: {reason}")
        self.code = code
        self.reason = reason


class UnknownCampaign(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no coupon campaign {name!r}: define it first")
        self.name = name


def new_code(pick: Callable[[str], str]) -> str:
    """A fresh code; ``pick`` chooses one character of a string (``secrets.choice``)."""
    return "".join(pick(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(typed: str) -> str:
    """A code as stored: upper case, without spaces or hyphens."""
    return _TYPED_NOISE.sub("", typed).upper()


def is_code(value: str) -> bool:
    return len(value) == CODE_LENGTH and all(char in CODE_ALPHABET for char in value)


def check_campaign_name(name: str, field: str = "campaign") -> str:
    if not CAMPAIGN_PATTERN.match(name):
        raise InvalidInput(field, f"must be {CAMPAIGN_FORM}")
    return name


def check_expiry(expires_at: datetime, now: datetime) -> datetime:
    if expires_at.tzinfo is None:
        raise InvalidInput("expiresAt", "needs a time zone, e.g. 2027-01-31T23:59:59Z")
    if expires_at <= now:
        raise InvalidInput("expiresAt", "lies in the past")
    if expires_at > now + MAX_LIFETIME:
        raise InvalidInput("expiresAt", f"lies more than {MAX_LIFETIME.days} days ahead")
    return expires_at


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_COUPONS_PER_CALL:
        raise InvalidInput("count", f"must be 1 to {MAX_COUPONS_PER_CALL}")
    return count


def refusal(
    coupon: Coupon | None, code: str, order_id: str, at: datetime, *, needs_profile: bool
) -> str | None:
    """Why this order may not redeem the coupon, or None when it may (or already did).

    ``needs_profile``: the order names no customer, so the coupon must name one.
    """
    if coupon is None:
        return "no such coupon"
    if order_id in coupon.orders:
        return None
    if needs_profile and coupon.profile_id is None:
        return "an anonymous coupon cannot say whose order this is: the order needs an identity"
    if at < coupon.issued_at:
        return "the order was placed before the coupon was issued"
    if at >= coupon.expires_at:
        return f"expired at {coupon.expires_at.isoformat()}"
    if coupon.rule is RedemptionRule.ONCE and coupon.redemptions > 0:
        return "already redeemed (the campaign allows one redemption per code)"
    return None


def median_days(days_to_redeem: dict[int, int]) -> float | None:
    """The median of whole days from issue to redemption, from how many coupons took each
    number of days; the mean of the two middle ones for an even count."""
    total = sum(days_to_redeem.values())
    if total == 0:
        return None
    ordered = sorted(days_to_redeem.items())
    middle = ((total - 1) // 2, total // 2)
    return sum(_nth(ordered, rank) for rank in middle) / 2


def _nth(ordered: list[tuple[int, int]], rank: int) -> int:
    """The ``rank``-th smallest value (from 0) of the values counted in ``ordered``."""
    seen = 0
    for value, count in ordered:
        seen += count
        if rank < seen:
            return value
    raise ValueError(f"rank {rank} beyond {seen} values")


def redemption_rate(issued: int, redeemed: int) -> float:
    """Redeemed coupons over issued ones (0 for a campaign that issued none)."""
    return 0.0 if issued == 0 else redeemed / issued

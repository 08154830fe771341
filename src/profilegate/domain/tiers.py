"""Loyalty tiers: a versioned policy and the pure evaluation of one customer against it.

The metric is the net spend (after returns and cancellations) of the orders whose credit day
falls in the last ``window_days`` days; an order's credit day is its day plus the policy's
return lock, so a purchase counts once its return window has closed. A points policy reads
the same money as points (``points_per_unit`` per unit of the base currency); its thresholds
are compared in money, exactly, as ``spend_threshold`` turns them.

A tier is held when the metric reached its threshold on some day of the retention look-back
(only today without retention; the last ``days`` days for rolling retention; since 1 January
of last year for "valid until the end of next year"). Overrides by extension come first:
``NO_TIER`` over ``FIXED_TIER`` over ``FLOOR`` over what the spend earned.

Evaluation reads one number per day with orders, so it is O(days in the window and look-back)
whatever the customer's history; it takes ``now`` and does no IO.
"""

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from profilegate.domain.errors import InvalidInput, invalid_input
from profilegate.domain.expected_forms import form
from profilegate.domain.extensions import EXTENSION_NAME, ExtensionGrant
from profilegate.domain.money import Currencies, exponent

MAX_TIERS = 20
MAX_BENEFITS = 32
MAX_OVERRIDES = 20
MAX_WINDOW_DAYS = 1095
MAX_RETURN_LOCK_DAYS = 365
END_OF_NEXT_YEAR_LOOKBACK_DAYS = 730  # 1 January of last year is at most this far back
TIER_NAME = form(
    r"^[A-Z][A-Z0-9_]{0,31}$",
    "upper-case letters, digits and '_', starting with a letter, at most 32, e.g. GOLD",
)
BENEFIT_KEY = form(
    r"^[a-z][a-z0-9_]{0,62}$",
    "lower-case letters, digits and '_', starting with a letter, at most 63, e.g. free_shipping",
)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class TierMetric(StrEnum):
    NET_SPEND = "NET_SPEND"
    POINTS = "POINTS"


class RetentionKind(StrEnum):
    NONE = "NONE"  # the tier the metric reaches today
    ROLLING = "ROLLING"  # kept for `days` days after the last day it was reached
    END_OF_NEXT_YEAR = "END_OF_NEXT_YEAR"  # kept until 31 December of the year after


class OverrideEffect(StrEnum):
    NO_TIER = "NO_TIER"
    FIXED_TIER = "FIXED_TIER"
    FLOOR = "FLOOR"


class LoyaltyReason(StrEnum):
    NO_POLICY = "NO_POLICY"
    ENTRY = "ENTRY"
    THRESHOLD = "THRESHOLD"
    RETAINED = "RETAINED"
    NO_TIER_BY_EXTENSION = "NO_TIER_BY_EXTENSION"
    FIXED_BY_EXTENSION = "FIXED_BY_EXTENSION"
    FLOOR_BY_EXTENSION = "FLOOR_BY_EXTENSION"


class BenefitType(StrEnum):
    BOOLEAN = "BOOLEAN"
    INTEGER = "INTEGER"
    DECIMAL = "DECIMAL"
    TEXT = "TEXT"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Benefit(_Model):
    """A typed key-value a tier grants, e.g. ``free_shipping: true`` or ``discount_percent: 5``."""

    key: str = Field(pattern=BENEFIT_KEY)
    value: (
        StrictBool
        | StrictInt
        | Annotated[Decimal, Field(allow_inf_nan=False)]
        | Annotated[StrictStr, Field(max_length=200)]
    )

    @property
    def type(self) -> BenefitType:
        match self.value:
            case bool():
                return BenefitType.BOOLEAN
            case int():
                return BenefitType.INTEGER
            case Decimal():
                return BenefitType.DECIMAL
            case _:
                return BenefitType.TEXT

    @classmethod
    def typed(cls, key: str, kind: BenefitType, value: Any) -> "Benefit":
        """A benefit read back from storage, where decimals sit as strings."""
        return cls(key=key, value=Decimal(value) if kind is BenefitType.DECIMAL else value)


class Tier(_Model):
    name: str = Field(pattern=TIER_NAME)
    threshold: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=15)]
    benefits: tuple[Benefit, ...] = Field(default=(), max_length=MAX_BENEFITS)

    @model_validator(mode="after")
    def _unique_benefits(self) -> Self:
        keys = [benefit.key for benefit in self.benefits]
        if len(keys) != len(set(keys)):
            raise ValueError("benefit keys must be unique within a tier")
        return self


class Retention(_Model):
    kind: RetentionKind
    days: int | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS)

    @model_validator(mode="after")
    def _days_for_rolling(self) -> Self:
        if (self.kind is RetentionKind.ROLLING) != (self.days is not None):
            raise ValueError("days is required for ROLLING retention and only there")
        return self

    @property
    def lookback_days(self) -> int:
        """How far back a day that reached a tier can still hold it today, at most."""
        match self.kind:
            case RetentionKind.NONE:
                return 0
            case RetentionKind.ROLLING:
                return self.days or 0
            case RetentionKind.END_OF_NEXT_YEAR:
                return END_OF_NEXT_YEAR_LOOKBACK_DAYS

    def lookback_start(self, today: date) -> date:
        if self.kind is RetentionKind.END_OF_NEXT_YEAR:
            return date(today.year - 1, 1, 1)
        return today - timedelta(days=self.lookback_days)

    def valid_until(self, reached: date) -> date:
        """The last day a tier reached on ``reached`` is held without being reached again."""
        match self.kind:
            case RetentionKind.NONE:
                return reached
            case RetentionKind.ROLLING:
                return reached + timedelta(days=self.days or 0)
            case RetentionKind.END_OF_NEXT_YEAR:
                return date(reached.year + 1, 12, 31)


class TierOverride(_Model):
    extension: str = Field(pattern=EXTENSION_NAME.pattern)
    effect: OverrideEffect
    tier: str | None = None

    @model_validator(mode="after")
    def _tier_when_needed(self) -> Self:
        if (self.effect is OverrideEffect.NO_TIER) != (self.tier is None):
            raise ValueError("tier is required for FIXED_TIER and FLOOR and not allowed for NO_TIER")
        return self


class TierPolicyDraft(_Model):
    """A policy as an admin writes it, before it gets a version."""

    metric: TierMetric
    window_days: int = Field(ge=1, le=MAX_WINDOW_DAYS)
    points_per_unit: Annotated[Decimal, Field(gt=0, le=10_000, allow_inf_nan=False)] | None = None
    return_lock_days: int = Field(default=0, ge=0, le=MAX_RETURN_LOCK_DAYS)
    retention: Retention
    tiers: tuple[Tier, ...] = Field(min_length=1, max_length=MAX_TIERS)
    overrides: tuple[TierOverride, ...] = Field(default=(), max_length=MAX_OVERRIDES)
    note: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.metric is TierMetric.POINTS) != (self.points_per_unit is not None):
            raise ValueError("pointsPerUnit is required for a POINTS policy and only there")
        return self

    @property
    def days_needed(self) -> int:
        """Days of daily buckets a profile must keep for this policy to see every order it counts."""
        return self.retention.lookback_days + self.return_lock_days + self.window_days


class TierPolicy(TierPolicyDraft):
    version: int = Field(ge=1)
    currency: str
    published_at: datetime
    published_by: str

    @property
    def entry_tier(self) -> Tier:
        return self.tiers[0]

    def tier(self, name: str) -> Tier:
        return next(tier for tier in self.tiers if tier.name == name)

    def rank(self, name: str) -> int:
        return next(i for i, tier in enumerate(self.tiers) if tier.name == name)

    def spend_threshold(self, tier: Tier) -> int:
        """The tier's threshold as net spend in minor units of the policy's currency."""
        if self.points_per_unit is None:
            return int(tier.threshold.scaleb(exponent(self.currency)))
        # points = floor(spend * rate): the least spend with points >= threshold
        return math.ceil(tier.threshold.scaleb(exponent(self.currency)) / self.points_per_unit)

    def points(self, spend_minor: int) -> int:
        assert self.points_per_unit is not None, "only a points policy has points"
        return math.floor(Decimal(spend_minor).scaleb(-exponent(self.currency)) * self.points_per_unit)


def check_draft(raw: Mapping[str, Any], currency: str, known_extensions: Iterable[str]) -> TierPolicyDraft:
    """Validate a draft policy; every problem names its field (``tiers[2].threshold``)."""
    try:
        draft = TierPolicyDraft.model_validate(raw)
    except ValidationError as error:
        raise invalid_input(error, "policy") from error
    _check_tiers(draft, currency)
    _check_overrides(draft, set(known_extensions))
    return draft


def same_policy(draft: TierPolicyDraft, currency: str, published: TierPolicy) -> bool:
    """Whether publishing ``draft`` in ``currency`` would repeat ``published`` (its version and
    provenance aside; 500 and 500.00 are the same threshold)."""
    return currency == published.currency and _shape(draft) == _shape(published)


def _shape(policy: TierPolicyDraft) -> dict[str, Any]:
    """The policy's content, benefits with their types (``true`` is not the integer 1)."""
    shape = policy.model_dump(include=set(TierPolicyDraft.model_fields), exclude={"tiers"})
    shape["tiers"] = [
        (tier.name, tier.threshold, [(b.key, b.type, b.value) for b in tier.benefits])
        for tier in policy.tiers
    ]
    return shape


def _check_tiers(draft: TierPolicyDraft, currency: str) -> None:
    if draft.tiers[0].threshold != 0:
        raise InvalidInput(
            "policy.tiers[0].threshold", "the first tier is the entry tier: its threshold is 0"
        )
    places = 0 if draft.metric is TierMetric.POINTS else exponent(currency)
    names: set[str] = set()
    for index, tier in enumerate(draft.tiers):
        field = f"policy.tiers[{index}]"
        if tier.name in names:
            raise InvalidInput(f"{field}.name", f"{tier.name} appears twice")
        names.add(tier.name)
        if tier.threshold != tier.threshold.quantize(Decimal(1).scaleb(-places)):
            unit = "whole points" if places == 0 else f"at most {places} decimals of {currency}"
            raise InvalidInput(f"{field}.threshold", f"must be {unit}")
        previous = draft.tiers[index - 1] if index else None
        if previous is not None and tier.threshold <= previous.threshold:
            raise InvalidInput(
                f"{field}.threshold",
                f"must ascend: {tier.threshold} is not above {previous.name}'s {previous.threshold}",
            )


def _check_overrides(draft: TierPolicyDraft, known_extensions: set[str]) -> None:
    tiers = {tier.name for tier in draft.tiers}
    seen: set[str] = set()
    for index, override in enumerate(draft.overrides):
        field = f"policy.overrides[{index}]"
        if override.extension not in known_extensions:
            raise InvalidInput(f"{field}.extension", f"extension {override.extension!r} is not defined")
        if override.extension in seen:
            raise InvalidInput(f"{field}.extension", f"{override.extension} has an override already")
        seen.add(override.extension)
        if override.tier is not None and override.tier not in tiers:
            raise InvalidInput(f"{field}.tier", f"{override.tier} is not a tier of this policy")


def check_retention_fits(draft: TierPolicyDraft, kept_days: int) -> None:
    """A policy must not look further back than profiles keep daily buckets."""
    if draft.days_needed > kept_days:
        raise InvalidInput(
            "policy",
            f"looks back {draft.days_needed} days (window + return lock + retention) but profiles keep "
            f"{kept_days} days of daily buckets (PROFILEGATE_DAILY_RETENTION_DAYS)",
        )


@dataclass(frozen=True)
class Loyalty:
    """A customer's standing under a policy at one moment."""

    tier: Tier | None
    reason: LoyaltyReason
    explanation: str
    spend: int  # the metric today, as net spend in minor units
    pending: int  # spend of orders still inside their return window
    next_tier: Tier | None
    to_next_tier: int | None  # spend still needed for the next tier, minor units
    valid_until: date | None
    decided_by: str | None  # the extension of an override that decided
    policy: TierPolicy | None

    @property
    def points(self) -> int | None:
        policy = self.policy
        return None if policy is None or policy.points_per_unit is None else policy.points(self.spend)

    @property
    def benefits(self) -> tuple[Benefit, ...]:
        return () if self.tier is None else self.tier.benefits


def no_policy() -> Loyalty:
    return Loyalty(
        None, LoyaltyReason.NO_POLICY, "no tier policy is active", 0, 0, None, None, None, None, None
    )


def evaluate_loyalty(
    policy: TierPolicy,
    spend: Mapping[int, int],
    extensions: Mapping[str, ExtensionGrant],
    now: datetime,
    *,
    cart: int = 0,
) -> Loyalty:
    """The tier held at ``now``; ``spend`` is net spend per UTC day (as ``day_number``) of the
    orders placed that day.

    ``cart`` adds an order of that many minor units today, counted as if already past its
    return window: the tier this purchase earns once it is kept.
    """
    today = now.astimezone(UTC).date()
    curve = SpendCurve.of(spend, policy.return_lock_days, policy.window_days, today, cart)
    earned = _earned(policy, curve, today)
    return _override(policy, extensions, now, earned) or earned


def _earned(policy: TierPolicy, curve: "SpendCurve", today: date) -> Loyalty:
    start = policy.retention.lookback_start(today)
    held, reached = 0, None
    for index in range(len(policy.tiers) - 1, 0, -1):
        reached = curve.last_reached(policy.spend_threshold(policy.tiers[index]), start, today)
        if reached is not None:
            held = index
            break
    tier = policy.tiers[held]
    spend = curve.at(today)
    if reached is None:
        reason, valid_until = LoyaltyReason.ENTRY, None
        text = f"{tier.name} is the entry tier; {_metric_text(policy, spend)}"
    elif reached == today:
        reason = LoyaltyReason.THRESHOLD
        valid_until = policy.retention.valid_until(curve.holds_until(policy.spend_threshold(tier), today))
        text = f"{_metric_text(policy, spend)} reaches {tier.name} ({_threshold_text(policy, tier)})"
    else:
        reason, valid_until = LoyaltyReason.RETAINED, policy.retention.valid_until(reached)
        text = (
            f"{tier.name} was reached on {reached.isoformat()} and is kept by the policy's "
            f"{policy.retention.kind.value} retention; {_metric_text(policy, spend)} now"
        )
    following = _following(policy, tier)
    return Loyalty(
        tier=tier,
        reason=reason,
        explanation=text,
        spend=spend,
        pending=curve.pending,
        next_tier=following,
        to_next_tier=_to_reach(policy, following, spend),
        valid_until=valid_until,
        decided_by=None,
        policy=policy,
    )


def _following(policy: TierPolicy, tier: Tier) -> Tier | None:
    rank = policy.rank(tier.name)
    return policy.tiers[rank + 1] if rank + 1 < len(policy.tiers) else None


def _to_reach(policy: TierPolicy, tier: Tier | None, spend: int) -> int | None:
    return None if tier is None else max(0, policy.spend_threshold(tier) - spend)


def _override(
    policy: TierPolicy, extensions: Mapping[str, ExtensionGrant], now: datetime, earned: Loyalty
) -> Loyalty | None:
    live = [o for o in policy.overrides if (g := extensions.get(o.extension)) is not None and g.active(now)]
    for effect in (OverrideEffect.NO_TIER, OverrideEffect.FIXED_TIER):
        override = next((o for o in live if o.effect is effect), None)
        if override is not None:
            return _decided(policy, override, extensions[override.extension], earned)
    floors = [o for o in live if o.effect is OverrideEffect.FLOOR]
    if not floors:
        return None
    best = max(floors, key=lambda o: policy.rank(o.tier or ""))
    assert earned.tier is not None, "a computed tier is never empty"
    if policy.rank(best.tier or "") <= policy.rank(earned.tier.name):
        return None
    return _decided(policy, best, extensions[best.extension], earned)


def _decided(policy: TierPolicy, override: TierOverride, grant: ExtensionGrant, earned: Loyalty) -> Loyalty:
    until = None if grant.expires_at is None else grant.expires_at.astimezone(UTC).date()
    provenance = f"extension {override.extension} (set by {grant.by}: {grant.reason})"
    tier = None if override.tier is None else policy.tier(override.tier)
    reason, text = {
        OverrideEffect.NO_TIER: (LoyaltyReason.NO_TIER_BY_EXTENSION, f"{provenance} excludes the customer"),
        OverrideEffect.FIXED_TIER: (LoyaltyReason.FIXED_BY_EXTENSION, f"{provenance} fixes the tier"),
        OverrideEffect.FLOOR: (LoyaltyReason.FLOOR_BY_EXTENSION, f"{provenance} sets a floor"),
    }[override.effect]
    following = None
    if tier is not None and override.effect is OverrideEffect.FLOOR:
        following = _following(policy, tier)
    return Loyalty(
        tier=tier,
        reason=reason,
        explanation=text,
        spend=earned.spend,
        pending=earned.pending,
        next_tier=following,
        to_next_tier=_to_reach(policy, following, earned.spend),
        valid_until=until,
        decided_by=override.extension,
        policy=policy,
    )


def _metric_text(policy: TierPolicy, spend: int) -> str:
    money = f"{Currencies(base=policy.currency).format(spend)} {policy.currency}"
    window = f"over the last {policy.window_days} days"
    if policy.points_per_unit is not None:
        return f"{policy.points(spend)} points ({money} net spend) {window}"
    return f"net spend {money} {window}"


def _threshold_text(policy: TierPolicy, tier: Tier) -> str:
    if policy.points_per_unit is not None:
        return f"{tier.threshold} points"
    return f"{tier.threshold} {policy.currency}"


def day_number(day: date) -> int:
    """Days since 1970-01-01: the day arithmetic both interpreters share."""
    return day.toordinal() - EPOCH_ORDINAL


def from_day_number(number: int) -> date:
    return date.fromordinal(number + EPOCH_ORDINAL)


@dataclass(frozen=True)
class SpendCurve:
    """The metric as a step function of the day number: from ``starts[i]`` on it is ``levels[i]``
    (0 before the first start). An order of day d with net n adds n from its credit day
    d + lock for ``window`` days."""

    starts: list[int]
    levels: list[int]
    pending: int

    @classmethod
    def of(cls, spend: Mapping[int, int], lock: int, window: int, today: date, cart: int = 0) -> "SpendCurve":
        now = day_number(today)
        deltas: dict[int, int] = {}
        pending = 0
        for day, net in spend.items():
            if net:
                credit = day + lock
                pending += net if credit > now else 0
                deltas[credit] = deltas.get(credit, 0) + net
                deltas[credit + window] = deltas.get(credit + window, 0) - net
        if cart:
            deltas[now] = deltas.get(now, 0) + cart
            deltas[now + window] = deltas.get(now + window, 0) - cart
        starts = sorted(deltas)
        return cls(starts, list(itertools.accumulate(deltas[day] for day in starts)), pending)

    def at(self, day: date) -> int:
        index = bisect.bisect_right(self.starts, day_number(day)) - 1
        return self.levels[index] if index >= 0 else 0

    def last_reached(self, threshold: int, start: date, end: date) -> date | None:
        """The latest day in [start, end] on which the metric was at least ``threshold`` (> 0)."""
        first, last = day_number(start), day_number(end)
        index = bisect.bisect_right(self.starts, last) - 1  # the step holding ``last``
        while index >= 0:
            if self.levels[index] >= threshold:
                stop = min(last, self.starts[index + 1] - 1) if index + 1 < len(self.starts) else last
                return from_day_number(stop) if stop >= first else None
            if self.starts[index] <= first:
                return None
            index -= 1
        return None

    def holds_until(self, threshold: int, today: date) -> date:
        """The last day of the unbroken run, from today on, with the metric at least ``threshold``.

        Every order leaves the window again, so the curve ends at 0 and the run ends.
        """
        assert threshold > 0, "only a threshold above 0 can be left"
        index = bisect.bisect_right(self.starts, day_number(today)) - 1
        last = day_number(today)
        while index + 1 < len(self.starts) and self.levels[index] >= threshold:
            last = self.starts[index + 1] - 1
            index += 1
        return from_day_number(last)


def spend_by_day(daily: Mapping[str, Any]) -> dict[int, int]:
    """Net spend per day number from domain day buckets (anything with ``gross`` and ``net``)."""
    return {
        day_number(date.fromisoformat(day)): bucket.net
        for day, bucket in daily.items()
        if bucket.gross or bucket.net
    }

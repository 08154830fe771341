"""GraphQL types of tier policies and of a customer's loyalty, one constructor each."""

from datetime import date, datetime
from typing import Self

import strawberry
from strawberry.scalars import JSON

from profilegate.api.metrics import Money
from profilegate.domain.money import Currencies
from profilegate.domain.tiers import (
    Benefit,
    BenefitType,
    Loyalty,
    LoyaltyReason,
    OverrideEffect,
    RetentionKind,
    Tier,
    TierMetric,
    TierPolicy,
)


@strawberry.type(name="Benefit", description="A typed key-value a tier grants, e.g. free_shipping: true.")
class BenefitObject:
    key: str
    type: BenefitType
    value: JSON = strawberry.field(description="A boolean, an integer, a decimal string or a text.")

    @classmethod
    def from_domain(cls, benefit: Benefit) -> Self:
        value = str(benefit.value) if benefit.type is BenefitType.DECIMAL else benefit.value
        return cls(key=benefit.key, type=benefit.type, value=JSON(value))


@strawberry.type(name="Tier")
class TierObject:
    name: str
    rank: int = strawberry.field(description="0 for the entry tier, ascending.")
    threshold: str = strawberry.field(description="In the base currency, or in points for a points policy.")
    benefits: list[BenefitObject]

    @classmethod
    def from_domain(cls, tier: Tier, policy: TierPolicy) -> Self:
        return cls(
            name=tier.name,
            rank=policy.rank(tier.name),
            threshold=str(tier.threshold),
            benefits=[BenefitObject.from_domain(benefit) for benefit in tier.benefits],
        )


@strawberry.type(name="TierRetention")
class RetentionObject:
    kind: RetentionKind
    days: int | None = strawberry.field(
        description="For ROLLING: days a tier is kept after it was last reached."
    )


@strawberry.type(name="TierOverride")
class OverrideObject:
    extension: str
    effect: OverrideEffect
    tier: str | None


@strawberry.type(name="TierPolicy", description="One published version of the tier policy.")
class TierPolicyObject:
    version: int
    metric: TierMetric
    window_days: int
    points_per_unit: str | None = strawberry.field(description="Points per unit of the base currency.")
    return_lock_days: int = strawberry.field(description="Orders count once this many days have passed.")
    retention: RetentionObject
    tiers: list[TierObject] = strawberry.field(description="In ascending order; the first is the entry tier.")
    overrides: list[OverrideObject]
    note: str
    currency: str
    published_at: datetime
    published_by: str

    @classmethod
    def from_domain(cls, policy: TierPolicy) -> Self:
        return cls(
            version=policy.version,
            metric=policy.metric,
            window_days=policy.window_days,
            points_per_unit=None if policy.points_per_unit is None else str(policy.points_per_unit),
            return_lock_days=policy.return_lock_days,
            retention=RetentionObject(kind=policy.retention.kind, days=policy.retention.days),
            tiers=[TierObject.from_domain(tier, policy) for tier in policy.tiers],
            overrides=[
                OverrideObject(extension=o.extension, effect=o.effect, tier=o.tier) for o in policy.overrides
            ],
            note=policy.note,
            currency=policy.currency,
            published_at=policy.published_at,
            published_by=policy.published_by,
        )


@strawberry.type(name="LoyaltyMetric", description="What the tier is measured on, today.")
class LoyaltyMetricObject:
    kind: TierMetric
    net_spend: Money = strawberry.field(description="Net spend credited in the window.")
    points: int | None = strawberry.field(description="For a points policy: the net spend in points.")
    pending: Money = strawberry.field(description="Net spend of orders still inside their return window.")
    window_days: int


@strawberry.type(name="Loyalty", description="The tier a customer holds now, why, and what comes next.")
class LoyaltyObject:
    tier: TierObject | None = strawberry.field(description="Null: no tier (no policy, or excluded).")
    reason: LoyaltyReason
    explanation: str
    decided_by: str | None = strawberry.field(description="The extension whose override decided, if one did.")
    metric: LoyaltyMetricObject | None
    next_tier: TierObject | None
    amount_to_next_tier: Money | None = strawberry.field(
        description="Net spend still needed for the next tier (for a points policy too)."
    )
    valid_until: date | None = strawberry.field(
        description="The last day the tier is held if nothing changes; null: it does not lapse."
    )
    benefits: list[BenefitObject]
    policy_version: int | None

    @classmethod
    def from_domain(cls, loyalty: Loyalty) -> Self:
        policy = loyalty.policy
        if policy is None:
            return cls(
                tier=None,
                reason=loyalty.reason,
                explanation=loyalty.explanation,
                decided_by=None,
                metric=None,
                next_tier=None,
                amount_to_next_tier=None,
                valid_until=None,
                benefits=[],
                policy_version=None,
            )
        currencies = Currencies(base=policy.currency)
        return cls(
            tier=_tier(loyalty.tier, policy),
            reason=loyalty.reason,
            explanation=loyalty.explanation,
            decided_by=loyalty.decided_by,
            metric=LoyaltyMetricObject(
                kind=policy.metric,
                net_spend=Money.of(loyalty.spend, currencies),
                points=loyalty.points,
                pending=Money.of(loyalty.pending, currencies),
                window_days=policy.window_days,
            ),
            next_tier=_tier(loyalty.next_tier, policy),
            amount_to_next_tier=None
            if loyalty.to_next_tier is None
            else Money.of(loyalty.to_next_tier, currencies),
            valid_until=loyalty.valid_until,
            benefits=[BenefitObject.from_domain(benefit) for benefit in loyalty.benefits],
            policy_version=policy.version,
        )


def _tier(tier: Tier | None, policy: TierPolicy) -> TierObject | None:
    return None if tier is None else TierObject.from_domain(tier, policy)


@strawberry.type
class TierCount:
    tier: str | None = strawberry.field(description="Null counts the profiles without a tier.")
    profiles: int


@strawberry.type
class TierDistribution:
    policy_version: int
    total: int = strawberry.field(description="Every profile not merged into another.")
    tiers: list[TierCount] = strawberry.field(description="Ascending, then the profiles without a tier.")

    @classmethod
    def of(cls, policy: TierPolicy, counts: dict[str | None, int]) -> Self:
        return cls(
            policy_version=policy.version,
            total=sum(counts.values()),
            tiers=[TierCount(tier=name, profiles=n) for name, n in counts.items()],
        )

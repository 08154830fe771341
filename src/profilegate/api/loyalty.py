"""Loyalty: the storefront's tier at checkout, the what-if, and the admin's tier policies."""

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from profilegate.api.context import Info
from profilegate.api.errors import (
    InvalidInputError,
    TierPolicyNotFoundError,
    TierPolicyUnchangedError,
    bad_input,
    error_result,
)
from profilegate.api.permissions import ADMIN, allow
from profilegate.api.storefront import not_permitted
from profilegate.api.tier_types import LoyaltyObject, TierDistribution, TierPolicyObject
from profilegate.api.types import ProfileRefInput
from profilegate.domain.errors import DomainError, InvalidInput, NotPermitted
from profilegate.domain.keys import Role
from profilegate.domain.refs import ProfileRef
from profilegate.domain.tiers import OverrideEffect, RetentionKind, TierMetric
from profilegate.service.tiers import activate_policy, loyalty_of, publish_policy, tier_distribution

LOYALTY_READERS = allow(Role.ADMIN, Role.STOREFRONT, Role.PARTNER)


@strawberry.input(description="A benefit: `value` is a boolean, an integer, a decimal or a text.")
class BenefitInput:
    key: str
    value: JSON


@strawberry.input
class TierInput:
    name: str = strawberry.field(description="Upper-case, e.g. GOLD.")
    threshold: str = strawberry.field(description="Decimal in the base currency, or whole points.")
    benefits: list[BenefitInput] = strawberry.field(default_factory=list)


@strawberry.input
class TierRetentionInput:
    kind: RetentionKind
    days: int | None = None


@strawberry.input
class TierOverrideInput:
    extension: str
    effect: OverrideEffect
    tier: str | None = None


@strawberry.input(description="A tier policy; publishing validates it and gives it the next version.")
class TierPolicyInput:
    metric: TierMetric
    window_days: int
    retention: TierRetentionInput
    tiers: list[TierInput] = strawberry.field(description="Ascending; the first is the entry tier, at 0.")
    points_per_unit: str | None = None
    return_lock_days: int = 0
    overrides: list[TierOverrideInput] = strawberry.field(default_factory=list)
    note: str = ""

    def to_raw(self) -> dict[str, Any]:
        """The policy as the domain validates it (its JSON field names)."""
        return {
            "metric": self.metric,
            "windowDays": self.window_days,
            "retention": {"kind": self.retention.kind, "days": self.retention.days},
            "tiers": [
                {
                    "name": tier.name,
                    "threshold": tier.threshold,
                    "benefits": [{"key": b.key, "value": b.value} for b in tier.benefits],
                }
                for tier in self.tiers
            ],
            "pointsPerUnit": self.points_per_unit,
            "returnLockDays": self.return_lock_days,
            "overrides": [
                {"extension": o.extension, "effect": o.effect, "tier": o.tier} for o in self.overrides
            ],
            "note": self.note,
        }


PublishTierPolicyResult = Annotated[
    TierPolicyObject | InvalidInputError | TierPolicyUnchangedError,
    strawberry.union("PublishTierPolicyResult"),
]
ActivateTierPolicyResult = Annotated[
    TierPolicyObject | TierPolicyNotFoundError | InvalidInputError,
    strawberry.union("ActivateTierPolicyResult"),
]


@strawberry.type
class LoyaltyQueries:
    @strawberry.field(
        permission_classes=[LOYALTY_READERS],
        description="The tier at checkout. An unknown customer (a guest) holds the entry tier.",
    )
    async def loyalty(self, info: Info, ref: ProfileRefInput) -> LoyaltyObject:
        context = info.context
        found = await loyalty_of(context.repos, context.tier_policy, _ref(info, ref), context.now)
        return LoyaltyObject.from_domain(found)

    @strawberry.field(
        permission_classes=[LOYALTY_READERS],
        description="The tier the customer earns with this cart once it is kept (past its return window).",
    )
    async def loyalty_what_if(self, info: Info, ref: ProfileRefInput, cart_total: str) -> LoyaltyObject:
        context = info.context
        currencies = context.tracking.events.currencies
        try:
            cart = currencies.to_minor(cart_total, currencies.base, "cartTotal")
        except InvalidInput as error:
            raise bad_input(error) from error
        if cart < 0:
            raise bad_input(InvalidInput("cartTotal", "must not be negative"))
        found = await loyalty_of(context.repos, context.tier_policy, _ref(info, ref), context.now, cart=cart)
        return LoyaltyObject.from_domain(found)

    @strawberry.field(
        permission_classes=[LOYALTY_READERS],
        description="The active policy, or the given version; null when there is none.",
    )
    async def tier_policy(self, info: Info, version: int | None = None) -> TierPolicyObject | None:
        context = info.context
        if version is None:
            policy = await context.tier_policy.get()
        else:
            policy = await context.repos.tier_policies.get(version)
        return None if policy is None else TierPolicyObject.from_domain(policy)

    @strawberry.field(permission_classes=[ADMIN], description="Every published version, oldest first.")
    async def tier_policies(self, info: Info) -> list[TierPolicyObject]:
        return [TierPolicyObject.from_domain(p) for p in await info.context.repos.tier_policies.all()]

    @strawberry.field(
        permission_classes=[ADMIN],
        description="Profiles per tier under the active policy, counted by the database; null without one.",
    )
    async def tier_distribution(self, info: Info) -> TierDistribution | None:
        context = info.context
        found = await tier_distribution(context.repos, context.tier_policy, context.now)
        return None if found is None else TierDistribution.of(*found)


@strawberry.type
class LoyaltyMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description=(
            "Validate and store a new version; `activate` makes it active. A policy the same as the "
            "active one or the latest version is refused (TierPolicyUnchangedError)."
        ),
    )
    async def publish_tier_policy(
        self, info: Info, policy: TierPolicyInput, activate: bool = False
    ) -> PublishTierPolicyResult:
        context = info.context
        try:
            published = await publish_policy(
                context.repos,
                context.tier_policy,
                policy.to_raw(),
                context.tier_rules,
                by=context.principal.name,
                now=context.now,
                activate=activate,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return TierPolicyObject.from_domain(published)

    @strawberry.mutation(permission_classes=[ADMIN], description="Make a published version the active one.")
    async def activate_tier_policy(self, info: Info, version: int) -> ActivateTierPolicyResult:
        context = info.context
        try:
            policy = await activate_policy(
                context.repos,
                context.tier_policy,
                version,
                context.tier_rules,
                by=context.principal.name,
                now=context.now,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return TierPolicyObject.from_domain(policy)


def _ref(info: Info, ref: ProfileRefInput) -> ProfileRef:
    try:
        domain_ref = ref.to_domain(info.context.phone_region)
        info.context.reach(domain_ref)
    except InvalidInput as error:
        raise bad_input(error) from error
    except NotPermitted as error:
        raise not_permitted(error) from error
    return domain_ref

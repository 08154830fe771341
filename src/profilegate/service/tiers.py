"""Tier policies (publish, activate, read) and a customer's loyalty under the active one."""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from profilegate.domain.errors import InvalidInput, TierPolicyNotFound, TierPolicyUnchanged
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.tiers import (
    Loyalty,
    TierPolicy,
    check_draft,
    check_retention_fits,
    evaluate_loyalty,
    no_policy,
    same_policy,
    spend_by_day,
)
from profilegate.service.cached import Cached
from profilegate.service.resolve import find_loyalty_view
from profilegate.storage.store import Repositories
from profilegate.storage.tier_policies import TierPolicyRepository


@dataclass(frozen=True)
class TierRules:
    currency: str  # thresholds are in this, the shop's base currency
    kept_days: int  # days of daily buckets profiles keep: how far back a policy may look


class ActivePolicy(Cached[TierPolicy | None]):
    """The active policy, read again after ``cache_seconds`` (an activation elsewhere shows then).

    An activation through this process shows at once.
    """

    def __init__(
        self,
        repository: TierPolicyRepository,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(repository.active, cache_seconds, clock)

    def replace(self, policy: TierPolicy | None) -> None:
        self.set(policy)


async def publish_policy(
    repos: Repositories,
    active: ActivePolicy,
    raw: Mapping[str, Any],
    rules: TierRules,
    *,
    by: str,
    now: datetime,
    activate: bool,
) -> TierPolicy:
    """Validate and store a new version; activate it when asked. A bad policy stores nothing, nor
    does one the same as the active policy or the latest version (``TierPolicyUnchanged``)."""
    known = [definition.name for definition in await repos.extension_definitions.all()]
    draft = check_draft(raw, rules.currency, known)
    check_retention_fits(draft, rules.kept_days)
    current = await active.get()
    latest = await repos.tier_policies.latest()
    for published in (current, latest):
        if published is not None and same_policy(draft, rules.currency, published):
            raise TierPolicyUnchanged(published.version, active=published is current)
    policy = await repos.tier_policies.publish(draft, currency=rules.currency, by=by, now=now)
    if activate:
        await activate_policy(repos, active, policy.version, rules, by=by, now=now)
    return policy


async def activate_policy(
    repos: Repositories, active: ActivePolicy, version: int, rules: TierRules, *, by: str, now: datetime
) -> TierPolicy:
    policy = await repos.tier_policies.get(version)
    if policy is None:
        raise TierPolicyNotFound(version)
    if policy.currency != rules.currency:
        raise InvalidInput(
            "version", f"was published in {policy.currency}, but the base currency is {rules.currency}"
        )
    check_retention_fits(policy, rules.kept_days)
    await repos.tier_policies.activate(version, by=by, now=now)
    active.replace(policy)
    return policy


async def loyalty_of(
    repos: Repositories, active: ActivePolicy, ref: ProfileRef, now: datetime, *, cart: int = 0
) -> Loyalty:
    """The customer's tier; an unknown customer (a guest checkout) holds the entry tier."""
    policy = await active.get()
    if policy is None:
        return no_policy()
    view = await find_loyalty_view(repos, ref)
    if view is None:
        return evaluate_loyalty(policy, {}, {}, now, cart=cart)
    return evaluate_loyalty(policy, view.spend, view.extensions, now, cart=cart)


def profile_loyalty(profile: Profile, policy: TierPolicy | None, now: datetime) -> Loyalty:
    if policy is None:
        return no_policy()
    return evaluate_loyalty(policy, spend_by_day(profile.aggregates.daily), profile.extensions, now)


async def tier_distribution(
    repos: Repositories, active: ActivePolicy, now: datetime
) -> tuple[TierPolicy, dict[str | None, int]] | None:
    """Profiles per tier under the active policy, counted in the database; None without one."""
    policy = await active.get()
    if policy is None:
        return None
    return policy, await repos.profiles.tier_counts(policy, now)

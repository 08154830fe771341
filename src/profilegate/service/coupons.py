"""Coupon campaigns, issuing codes, redeeming them on the tracking path, and their performance."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from profilegate.domain.coupons import (
    Campaign,
    Coupon,
    CouponRefused,
    RedemptionRule,
    UnknownCampaign,
    check_campaign_name,
    check_count,
    check_expiry,
    is_code,
    median_days,
    new_code,
    normalise_code,
    redemption_rate,
    refusal,
)
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, RedeemedCoupon, TrackedEvent
from profilegate.domain.refs import ProfileRef
from profilegate.service.resolve import require_profile
from profilegate.storage.coupons import CampaignOutcome, ChannelFigures
from profilegate.storage.store import Repositories

# Draws of a fresh code when the one drawn is taken (at 2^59 codes, one retry is already rare).
MAX_DRAWS = 5


@dataclass(frozen=True)
class CouponPerformance:
    campaign: str
    issued: int
    redeemed: int
    redemptions: int
    revenue: int
    redemption_rate: float
    median_days_to_redeem: float | None
    by_issue: list[ChannelFigures]
    by_redemption: list[ChannelFigures]


async def define_campaign(
    repos: Repositories, name: str, rule: RedemptionRule, description: str, now: datetime
) -> tuple[Campaign, CampaignOutcome]:
    """Create a campaign or change its description; its redemption rule cannot change."""
    campaign = Campaign(
        name=check_campaign_name(name, "name"), rule=rule, description=description, created_at=now
    )
    stored = await repos.coupons.campaign(name)
    if stored is not None and stored.rule is not rule:
        raise InvalidInput("rule", f"campaign {name!r} redeems {stored.rule.value}; a rule cannot change")
    outcome = await repos.coupons.define(campaign)
    return (stored or campaign).model_copy(update={"description": description}), outcome


async def issue_coupon(
    repos: Repositories, ref: ProfileRef, campaign: str, channel: Channel, expires_at: datetime, now: datetime
) -> Coupon:
    """A fresh code tied to the profile ``ref`` names."""
    found = await _campaign(repos, campaign)
    check_expiry(expires_at, now)
    profile = await require_profile(repos, ref)
    return (await _issue(repos, found, channel, expires_at, now, [profile.id]))[0]


async def issue_coupons(
    repos: Repositories, campaign: str, count: int, channel: Channel, expires_at: datetime, now: datetime
) -> list[Coupon]:
    """``count`` fresh anonymous codes (for a flyer): a purchase redeeming one needs an identity."""
    found = await _campaign(repos, campaign)
    check_expiry(expires_at, now)
    return await _issue(repos, found, channel, expires_at, now, [None] * check_count(count))


async def coupon_performance(repos: Repositories, campaign: str) -> CouponPerformance:
    await _campaign(repos, campaign)
    figures = await repos.coupons.figures(campaign)
    issued = sum(row.issued for row in figures.by_issue)
    redeemed = sum(row.redeemed for row in figures.by_issue)
    return CouponPerformance(
        campaign=campaign,
        issued=issued,
        redeemed=redeemed,
        redemptions=sum(row.redemptions for row in figures.by_issue),
        revenue=sum(row.revenue for row in figures.by_issue),
        redemption_rate=redemption_rate(issued, redeemed),
        median_days_to_redeem=median_days(figures.days_to_redeem),
        by_issue=figures.by_issue,
        by_redemption=figures.by_redemption,
    )


@dataclass(frozen=True)
class Redeemed:
    """What redeeming an event's coupon gave: the event as tracking should apply it, or why it
    is refused; ``counted``: this call counted the redemption (not a replay's earlier one)."""

    outcome: TrackedEvent | CouponRefused
    counted: bool = False


async def redeem_orders(repos: Repositories, events: Sequence[TrackedEvent]) -> list[Redeemed]:
    """Each event as tracking should apply it, or why it is refused.

    An order carrying one of our codes redeems it (one store command; a refused one costs one
    more read to say why); an order that names no customer is addressed to the coupon's
    profile. Codes that are not ours (a shop's generic promotion codes) are left alone, unless
    the order has nothing else to say whose it is. Events without a code cost nothing.
    """
    return [await _redeemed(repos, event) for event in events]


async def release(repos: Repositories, event: TrackedEvent) -> None:
    """Take back the redemption this event counted, when the event was not applied after all
    (its id named another person's event, or its profile was erased meanwhile)."""
    assert event.redeemed is not None, "only an order that redeemed a coupon"
    assert event.order_id is not None, "an order has an order id"
    await repos.coupons.release(event.redeemed.code, event.order_id, event.amount, event.channel)


async def _redeemed(repos: Repositories, event: TrackedEvent) -> Redeemed:
    if event.coupon_code is None:
        return Redeemed(event)
    code = normalise_code(event.coupon_code)
    needs_profile = not event.addressed
    if not is_code(code):
        return Redeemed(CouponRefused(code, "no such coupon") if needs_profile else event)
    assert event.order_id is not None, "a coupon code comes with an order"
    coupon = await repos.coupons.redeem(
        code, event.order_id, event.amount, event.at, event.channel, needs_profile=needs_profile
    )
    counted = coupon is not None
    if coupon is None:
        coupon = await repos.coupons.get(code)
        reason = refusal(coupon, code, event.order_id, event.at, needs_profile=needs_profile)
        if coupon is None and not needs_profile:
            return Redeemed(event)
        if reason is not None or coupon is None:
            return Redeemed(CouponRefused(code, reason or "no such coupon"))
    redeemed = RedeemedCoupon(code=code, campaign=coupon.campaign, issued_on=coupon.channel)
    target = event.target if event.addressed else ProfileRef(id=coupon.profile_id)
    return Redeemed(event.model_copy(update={"redeemed": redeemed, "target": target}), counted)


async def _campaign(repos: Repositories, name: str) -> Campaign:
    found = await repos.coupons.campaign(check_campaign_name(name))
    if found is None:
        raise UnknownCampaign(name)
    return found


async def _issue(
    repos: Repositories,
    campaign: Campaign,
    channel: Channel,
    expires_at: datetime,
    now: datetime,
    owners: list[str | None],
) -> list[Coupon]:
    # BSON dates hold milliseconds: keep what the store will.
    expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    pending = [_coupon(campaign, channel, owner, now, expires_at) for owner in owners]
    issued: list[Coupon] = []
    for _ in range(MAX_DRAWS):
        clashed = await repos.coupons.insert(pending)
        issued += [coupon for coupon in pending if coupon.code not in clashed]
        pending = [
            _coupon(campaign, channel, coupon.profile_id, now, expires_at)
            for coupon in pending
            if coupon.code in clashed
        ]
        if not pending:
            return issued
    raise RuntimeError(f"{len(pending)} fresh codes were all taken {MAX_DRAWS} times over")


def _coupon(
    campaign: Campaign, channel: Channel, owner: str | None, now: datetime, expires_at: datetime
) -> Coupon:
    return Coupon(
        code=new_code(secrets.choice),
        campaign=campaign.name,
        rule=campaign.rule,
        channel=channel,
        profile_id=owner,
        issued_at=now,
        expires_at=expires_at,
    )

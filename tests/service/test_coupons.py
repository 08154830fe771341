"""Coupons on the real store: issued to a profile, redeemed by orders on the tracking path, counted."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from profilegate.domain.coupons import MAX_COUPONS_PER_CALL, RedemptionRule, UnknownCampaign
from profilegate.domain.errors import InvalidInput, ProfileNotFound
from profilegate.domain.events import Channel, EventRules
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.refs import ProfileRef
from profilegate.service.coupons import coupon_performance, define_campaign, issue_coupon, issue_coupons
from profilegate.service.profiles import ProfileRules
from profilegate.service.rebuild import rebuild_aggregates
from profilegate.service.resolve import find_profile
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.storage.store import Repositories
from tests.service.raw_events import email_ref, event, order

ANN = "ann@example.com"
ANN_REF = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, ANN))


@pytest.fixture
def tracking(rules: ProfileRules) -> TrackingRules:
    return TrackingRules(events=EventRules(), profiles=rules)


def pos_purchase(event_id: str, order_id: str, total: str, at: datetime, code: str) -> dict[str, Any]:
    """A till's purchase that carries the coupon code and nothing about the customer."""
    raw = order(event_id, order_id, total, at, {}, channel="store")
    raw["properties"]["couponCode"] = code
    return raw


async def ann_with_campaign(
    repos: Repositories, tracking: TrackingRules, now: datetime, rule: RedemptionRule = RedemptionRule.ONCE
) -> str:
    """Ann, known from a web visit, and a campaign; Ann's profile id."""
    await track(repos, [event("visit", "page_view", now - timedelta(days=3), email_ref(ANN))], tracking, now)
    await define_campaign(repos, "spring", rule, "10 % off in store", now - timedelta(days=3))
    profile = await find_profile(repos, ANN_REF)
    assert profile is not None
    return profile.id


async def test_an_emailed_coupon_redeemed_at_the_till_lands_on_its_profile(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    ann = await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(
        repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now - timedelta(days=2)
    )

    result = await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, coupon.code)], tracking, now)

    assert [(r.id, r.status) for r in result.results] == [("till-1", Status.ACCEPTED)]
    profile = await find_profile(repos, ANN_REF)
    assert profile is not None
    assert profile.id == ann
    assert profile.aggregates.orders == 1
    assert profile.aggregates.gross == 5000
    assert profile.aggregates.channels == {"web": 1, "store": 1}
    performance = await coupon_performance(repos, "spring")
    assert (performance.issued, performance.redeemed, performance.revenue) == (1, 1, 5000)
    assert performance.redemption_rate == 1.0
    assert performance.median_days_to_redeem == 2.0
    assert [(row.channel, row.issued, row.redeemed) for row in performance.by_issue] == [
        (Channel.EMAIL, 1, 1)
    ]
    assert [(row.channel, row.redemptions, row.revenue) for row in performance.by_redemption] == [
        (Channel.STORE, 1, 5000)
    ]


async def test_a_code_is_read_as_a_cashier_types_it(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    typed = f"{coupon.code[:4].lower()}-{coupon.code[4:8]} {coupon.code[8:]}"

    result = await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, typed)], tracking, now)

    assert result.count(Status.ACCEPTED) == 1


async def test_a_second_redemption_of_a_once_only_code_is_refused_with_its_reason(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, coupon.code)], tracking, now)

    again = await track(repos, [pos_purchase("till-2", "pos-2", "30.00", now, coupon.code)], tracking, now)

    assert again.results[0].status is Status.REJECTED
    assert (
        again.results[0].reason
        == f"coupon {coupon.code}: already redeemed (the campaign allows one redemption per code)"
    )
    profile = await find_profile(repos, ANN_REF)
    assert profile is not None
    assert profile.aggregates.orders == 1
    performance = await coupon_performance(repos, "spring")
    assert (performance.redeemed, performance.redemptions, performance.revenue) == (1, 1, 5000)


async def test_a_counted_campaign_counts_every_redemption(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now, RedemptionRule.COUNTED)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, coupon.code)], tracking, now)

    again = await track(repos, [pos_purchase("till-2", "pos-2", "30.00", now, coupon.code)], tracking, now)

    assert again.count(Status.ACCEPTED) == 1
    profile = await find_profile(repos, ANN_REF)
    assert profile is not None
    assert profile.aggregates.orders == 2
    performance = await coupon_performance(repos, "spring")
    assert (performance.issued, performance.redeemed, performance.redemptions, performance.revenue) == (
        1,
        1,
        2,
        8000,
    )


async def test_a_replayed_purchase_redeems_its_coupon_once(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now, RedemptionRule.COUNTED)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    purchase = pos_purchase("till-1", "pos-1", "50.00", now, coupon.code)
    await track(repos, [purchase], tracking, now)

    again = await track(repos, [purchase], tracking, now + timedelta(minutes=1))
    # the same order sent again under another event id is refused: its redemption is given back
    other_id = await track(repos, [{**purchase, "id": "till-1-resent"}], tracking, now)

    assert [r.status for r in again.results] == [Status.DUPLICATE]
    assert [(r.status, r.reason) for r in other_id.results] == [
        (Status.REJECTED, "properties.orderId: order pos-1 was counted already, as event till-1")
    ]
    performance = await coupon_performance(repos, "spring")
    assert (performance.redemptions, performance.revenue) == (1, 5000)
    profile = await find_profile(repos, ANN_REF)
    assert profile is not None
    assert profile.aggregates.orders == 1


async def test_racing_tills_redeem_a_once_only_code_once(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)

    results = await asyncio.gather(
        *(
            track(repos, [pos_purchase(f"till-{i}", f"pos-{i}", "50.00", now, coupon.code)], tracking, now)
            for i in range(4)
        )
    )

    assert sorted(result.results[0].status for result in results) == [Status.ACCEPTED] + [Status.REJECTED] * 3
    performance = await coupon_performance(repos, "spring")
    assert performance.redemptions == 1


async def test_an_anonymous_code_needs_an_identity_on_the_order(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    (flyer,) = await issue_coupons(repos, "spring", 1, Channel.STORE, now + timedelta(days=30), now)

    alone = await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, flyer.code)], tracking, now)
    with_identity = pos_purchase("till-2", "pos-2", "50.00", now, flyer.code) | email_ref(ANN)
    known = await track(repos, [with_identity], tracking, now)

    assert alone.results[0].status is Status.REJECTED
    assert alone.results[0].reason is not None
    assert "needs an identity" in alone.results[0].reason
    assert known.count(Status.ACCEPTED) == 1
    performance = await coupon_performance(repos, "spring")
    assert [(row.channel, row.redeemed) for row in performance.by_issue] == [(Channel.STORE, 1)]


async def test_orders_with_codes_that_are_not_ours_are_tracked_as_before(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    generic = order("o1", "order-1", "50.00", now, email_ref(ANN))
    generic["properties"]["couponCode"] = "WELCOME10"
    unknown = order("o2", "order-2", "50.00", now, email_ref(ANN))
    unknown["properties"]["couponCode"] = "ABCDEFGHJKMN"

    result = await track(repos, [generic, unknown], tracking, now)
    anonymous = await track(repos, [pos_purchase("till-1", "pos-1", "5.00", now, "WELCOME10")], tracking, now)

    assert result.count(Status.ACCEPTED) == 2
    assert anonymous.results[0].status is Status.REJECTED
    assert anonymous.results[0].reason == "coupon WELCOME10: no such coupon"


async def test_an_expired_coupon_is_refused(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(
        repos, ANN_REF, "spring", Channel.EMAIL, now - timedelta(days=1), now - timedelta(days=2)
    )

    result = await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, coupon.code)], tracking, now)

    assert result.results[0].reason is not None
    assert "expired at" in result.results[0].reason


async def test_issuing_checks_its_input(repos: Repositories, tracking: TrackingRules, now: datetime) -> None:
    await ann_with_campaign(repos, tracking, now)
    later = now + timedelta(days=30)
    nobody = ProfileRef(identity=normalise_identity(IdentityType.EMAIL, "nobody@example.com"))
    with pytest.raises(UnknownCampaign):
        await issue_coupon(repos, ANN_REF, "autumn", Channel.EMAIL, later, now)
    with pytest.raises(ProfileNotFound):
        await issue_coupon(repos, nobody, "spring", Channel.EMAIL, later, now)
    with pytest.raises(InvalidInput, match="expiresAt: lies in the past"):
        await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now - timedelta(seconds=1), now)
    with pytest.raises(InvalidInput, match="expiresAt: lies more than 1095 days ahead"):
        await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=1096), now)
    with pytest.raises(InvalidInput, match=f"count: must be 1 to {MAX_COUPONS_PER_CALL}"):
        await issue_coupons(repos, "spring", MAX_COUPONS_PER_CALL + 1, Channel.STORE, later, now)
    with pytest.raises(InvalidInput, match="rule: campaign 'spring' redeems once; a rule cannot change"):
        await define_campaign(repos, "spring", RedemptionRule.COUNTED, "", now)
    assert (await coupon_performance(repos, "spring")).issued == 0


async def test_a_flyer_batch_has_distinct_codes(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)

    flyer = await issue_coupons(repos, "spring", 200, Channel.STORE, now + timedelta(days=30), now)

    assert len({coupon.code for coupon in flyer}) == 200
    assert all(coupon.profile_id is None for coupon in flyer)
    assert (await coupon_performance(repos, "spring")).issued == 200


async def test_the_profile_links_the_channels_and_a_rebuild_from_the_log_agrees(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now, RedemptionRule.COUNTED)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    web_order = order("o1", "web-1", "20.00", now, email_ref(ANN), channel="email")
    web_order["properties"]["couponCode"] = coupon.code
    await track(repos, [pos_purchase("till-1", "pos-1", "50.00", now, coupon.code), web_order], tracking, now)
    live = await find_profile(repos, ANN_REF)
    assert live is not None

    await rebuild_aggregates(repos, now, tracking.retention_days)

    assert live.aggregates.channel_links == {"email>store": 1}
    assert live.aggregates.coupon_campaigns == {"spring": now.date().isoformat()}
    assert live.aggregates.coupons_in(now, 1) == 2
    rebuilt = await find_profile(repos, ANN_REF)
    assert rebuilt is not None
    assert rebuilt.aggregates.model_dump(exclude={"recent_event_ids"}) == live.aggregates.model_dump(
        exclude={"recent_event_ids"}
    )


async def test_a_redemption_whose_order_is_not_applied_is_taken_back(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    bob = event("shared-id", "page_view", now, email_ref("bob@example.com"))
    await track(repos, [bob], tracking, now)

    # the event id names Bob's page view: the purchase is a duplicate, not Ann's order
    reused = await track(
        repos, [pos_purchase("shared-id", "pos-1", "50.00", now, coupon.code)], tracking, now
    )
    fresh = await track(repos, [pos_purchase("till-2", "pos-2", "30.00", now, coupon.code)], tracking, now)

    assert reused.results[0].status is Status.DUPLICATE
    assert fresh.results[0].status is Status.ACCEPTED
    performance = await coupon_performance(repos, "spring")
    assert (performance.redemptions, performance.revenue, performance.median_days_to_redeem) == (1, 3000, 0.0)


async def test_a_purchase_sent_twice_at_once_is_one_order_and_one_redemption(
    repos: Repositories, tracking: TrackingRules, now: datetime
) -> None:
    await ann_with_campaign(repos, tracking, now)
    coupon = await issue_coupon(repos, ANN_REF, "spring", Channel.EMAIL, now + timedelta(days=30), now)
    purchase = pos_purchase("till-1", "pos-1", "50.00", now, coupon.code)

    results = await asyncio.gather(*(track(repos, [purchase], tracking, now) for _ in range(3)))

    assert Status.ACCEPTED in {result.results[0].status for result in results}
    assert Status.REJECTED not in {result.results[0].status for result in results}
    profile = await find_profile(repos, ANN_REF)
    assert profile is not None
    assert profile.aggregates.orders == 1
    assert (await coupon_performance(repos, "spring")).redemptions == 1

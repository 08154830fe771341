"""Coupons over GraphQL: a code e-mailed to a customer and redeemed by an anonymous store
purchase lands on that customer and counts in ``couponPerformance``; the campaign's rule
decides a second redemption; who may issue; input errors; the audit trail."""

from datetime import datetime, timedelta
from typing import Any

from tests.gateway import FrozenClock, GatewayClient

ANN = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}
DEFINE = """
mutation Define($name: String!, $rule: RedemptionRule!) {
  defineCouponCampaign(name: $name, rule: $rule, description: "10 % off in store") {
    __typename
    ... on CampaignDefined { outcome campaign { name rule } }
    ... on InvalidInputError { field message }
  }
}
"""
ISSUE = """
mutation Issue($ref: ProfileRef!, $campaign: String!, $expiresAt: DateTime!) {
  issueCoupon(ref: $ref, campaign: $campaign, channel: EMAIL, expiresAt: $expiresAt) {
    __typename
    ... on CouponIssued { coupon { code campaign channel profileId expiresAt redemptions } }
    ... on Error { message }
    ... on InvalidInputError { field }
  }
}
"""
ISSUE_MANY = """
mutation Flyer($campaign: String!, $count: Int!, $expiresAt: DateTime!) {
  issueCoupons(campaign: $campaign, count: $count, expiresAt: $expiresAt) {
    __typename
    ... on CouponsIssued { coupons { code channel profileId } }
    ... on InvalidInputError { field message }
  }
}
"""
TRACK = """
mutation Track($events: [EventInput!]!) {
  track(events: $events) { accepted rejected results { id status reason } }
}
"""
PERFORMANCE = """
query Performance($campaign: String!) {
  couponPerformance(campaign: $campaign) {
    issued redeemed redemptions redemptionRate medianDaysToRedeem revenue { amount currency }
    byIssueChannel { channel issued redeemed }
    byRedemptionChannel { channel redemptions revenue { amount } }
  }
}
"""
UPSERT = """
mutation($ref: ProfileRef!) {
  upsertProfile(input: {ref: $ref}) { ... on ProfileUpserted { profile { id } } }
}
"""
PROFILE = """
query($ref: ProfileRef!) {
  profile(ref: $ref) {
    id
    metrics {
      orders couponsRedeemed(days: 7) channels { channel count } channelLinks { issuedOn boughtOn orders }
    }
  }
}
"""


def till_purchase(event_id: str, order_id: str, code: str, at: datetime) -> dict[str, Any]:
    """A store purchase that names no customer, only the coupon handed over at the till."""
    items = [{"sku": "A1", "price": "50.00", "quantity": 1}]
    order = {"orderId": order_id, "total": "50.00", "currency": "EUR", "items": items, "couponCode": code}
    return {"id": event_id, "at": at.isoformat(), "channel": "STORE", "payload": {"orderCompleted": order}}


async def emailed_coupon(gateway: GatewayClient, clock: FrozenClock, rule: str = "ONCE") -> tuple[str, str]:
    """Ann, a campaign with ``rule``, and a code e-mailed to her; her profile id and the code."""
    upserted = await gateway.execute(UPSERT, {"ref": ANN})
    assert (await gateway.execute(DEFINE, {"name": "spring", "rule": rule})).data["defineCouponCampaign"][
        "outcome"
    ] == "CREATED"
    issued = await gateway.execute(
        ISSUE, {"ref": ANN, "campaign": "spring", "expiresAt": (clock() + timedelta(days=30)).isoformat()}
    )
    coupon = issued.data["issueCoupon"]["coupon"]
    return upserted.data["upsertProfile"]["profile"]["id"], coupon["code"]


async def test_an_emailed_coupon_redeemed_by_an_anonymous_store_purchase_is_that_customers_order(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    ann, code = await emailed_coupon(gateway, clock)
    clock.advance(days=3)

    tracked = await gateway.execute(TRACK, {"events": [till_purchase("till-1", "pos-1", code, clock())]})

    assert tracked.data["track"]["accepted"] == 1
    profile = (await gateway.execute(PROFILE, {"ref": ANN})).data["profile"]
    assert profile["id"] == ann
    assert profile["metrics"]["orders"] == 1
    assert profile["metrics"]["channels"] == [{"channel": "STORE", "count": 1}]
    assert profile["metrics"]["couponsRedeemed"] == 1
    assert profile["metrics"]["channelLinks"] == [{"issuedOn": "EMAIL", "boughtOn": "STORE", "orders": 1}]
    performance = (await gateway.execute(PERFORMANCE, {"campaign": "spring"})).data["couponPerformance"]
    assert performance == {
        "issued": 1,
        "redeemed": 1,
        "redemptions": 1,
        "redemptionRate": 1.0,
        "medianDaysToRedeem": 3.0,
        "revenue": {"amount": "50.00", "currency": "EUR"},
        "byIssueChannel": [{"channel": "EMAIL", "issued": 1, "redeemed": 1}],
        "byRedemptionChannel": [{"channel": "STORE", "redemptions": 1, "revenue": {"amount": "50.00"}}],
    }


async def test_a_second_redemption_follows_the_campaigns_rule(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    _, once = await emailed_coupon(gateway, clock, "ONCE")
    await gateway.execute(TRACK, {"events": [till_purchase("till-1", "pos-1", once, clock())]})

    second = await gateway.execute(TRACK, {"events": [till_purchase("till-2", "pos-2", once, clock())]})

    assert second.data["track"]["results"] == [
        {
            "id": "till-2",
            "status": "REJECTED",
            "reason": f"coupon {once}: already redeemed (the campaign allows one redemption per code)",
        }
    ]
    await gateway.execute(DEFINE, {"name": "loyal", "rule": "COUNTED"})
    issued = await gateway.execute(
        ISSUE, {"ref": ANN, "campaign": "loyal", "expiresAt": (clock() + timedelta(days=30)).isoformat()}
    )
    counted = issued.data["issueCoupon"]["coupon"]["code"]
    for n in range(2):
        result = await gateway.execute(
            TRACK, {"events": [till_purchase(f"l-{n}", f"lo-{n}", counted, clock())]}
        )
        assert result.data["track"]["accepted"] == 1
    performance = (await gateway.execute(PERFORMANCE, {"campaign": "loyal"})).data["couponPerformance"]
    assert (performance["redeemed"], performance["redemptions"]) == (1, 2)


async def test_flyer_codes_partners_and_input_errors(gateway: GatewayClient, clock: FrozenClock) -> None:
    await emailed_coupon(gateway, clock)
    partner = await gateway.create_key("PARTNER", "crm")
    storefront = await gateway.create_key("STOREFRONT", "shop")
    later = (clock() + timedelta(days=30)).isoformat()

    flyer = await gateway.execute(
        ISSUE_MANY, {"campaign": "spring", "count": 3, "expiresAt": later}, key=partner
    )
    too_many = await gateway.execute(ISSUE_MANY, {"campaign": "spring", "count": 1001, "expiresAt": later})
    refused = await gateway.execute(
        ISSUE_MANY, {"campaign": "spring", "count": 1, "expiresAt": later}, key=storefront
    )
    unknown = await gateway.execute(ISSUE, {"ref": ANN, "campaign": "autumn", "expiresAt": later})
    past = await gateway.execute(ISSUE, {"ref": ANN, "campaign": "spring", "expiresAt": clock().isoformat()})

    coupons = flyer.data["issueCoupons"]["coupons"]
    assert [(c["channel"], c["profileId"]) for c in coupons] == [("STORE", None)] * 3
    assert too_many.data["issueCoupons"] == {
        "__typename": "InvalidInputError",
        "field": "count",
        "message": "count: must be 1 to 1000",
    }
    assert refused.error_codes == ["FORBIDDEN"]
    assert unknown.data["issueCoupon"]["__typename"] == "UnknownCampaignError"
    assert past.data["issueCoupon"] == {
        "__typename": "InvalidInputError",
        "message": "expiresAt: lies in the past",
        "field": "expiresAt",
    }
    performance = (await gateway.execute(PERFORMANCE, {"campaign": "spring"})).data["couponPerformance"]
    assert performance["issued"] == 4
    missing = await gateway.execute(PERFORMANCE, {"campaign": "autumn"})
    assert missing.data["couponPerformance"] is None


async def test_issuing_is_in_the_audit_log_with_its_profile(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    ann, _ = await emailed_coupon(gateway, clock)

    log = await gateway.execute(
        '{ auditLog(filter: {action: "issueCoupon"}) { entries { profileId outcome } } }'
    )

    assert log.data["auditLog"]["entries"] == [{"profileId": ann, "outcome": "CouponIssued"}]


SAVE_SEGMENT = """
mutation($rule: String!) {
  saveSegment(input: {key: "spring-redeemers", name: "Spring redeemers", rule: $rule}) { __typename }
}
"""
SEGMENT = """
query($ref: ProfileRef!) {
  profile(ref: $ref) { inSegment(key: "spring-redeemers") }
  segment(key: "spring-redeemers") { size members { profiles { id } } }
}
"""


async def test_redeemed_coupon_segments_the_customers_who_redeemed_recently(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    ann, code = await emailed_coupon(gateway, clock)
    saved = await gateway.execute(SAVE_SEGMENT, {"rule": 'redeemed_coupon("spring", last 7d)'})
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    before = (await gateway.execute(SEGMENT, {"ref": ANN})).data

    await gateway.execute(TRACK, {"events": [till_purchase("till-1", "pos-1", code, clock())]})
    after = (await gateway.execute(SEGMENT, {"ref": ANN})).data
    clock.advance(days=7)
    expired = (await gateway.execute(SEGMENT, {"ref": ANN})).data

    assert (before["profile"]["inSegment"], before["segment"]["size"]) == (False, 0)
    assert (after["profile"]["inSegment"], after["segment"]["size"]) == (True, 1)
    assert after["segment"]["members"]["profiles"] == [{"id": ann}]
    assert (expired["profile"]["inSegment"], expired["segment"]["size"]) == (False, 0)

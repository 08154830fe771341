"""Loyalty over GraphQL: the checkout read, the what-if, overrides that expire, policies, counts."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient
from tests.shopper_proofs import proof_for

FIXTURE = json.loads((Path(__file__).parents[2] / "fixtures" / "tier_policy.json").read_text())
PUBLISH = """
mutation($policy: TierPolicyInput!, $activate: Boolean!) {
  publishTierPolicy(policy: $policy, activate: $activate) {
    __typename
    ... on TierPolicy { version tiers { name rank threshold benefits { key type value } } }
    ... on InvalidInputError { field message }
  }
}
"""
LOYALTY = """
query($ref: ProfileRef!) {
  loyalty(ref: $ref) {
    tier { name } reason explanation decidedBy validUntil policyVersion
    metric { kind netSpend { amount currency } pending { amount } windowDays }
    nextTier { name } amountToNextTier { amount currency }
    benefits { key type value }
  }
}
"""


def email(value: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": value}}


def order(event_id: str, who: str, total: str, at: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order_completed",
        "at": at,
        "channel": "web",
        "identity": {"type": "EMAIL", "value": who},
        "properties": {
            "orderId": f"o-{event_id}",
            "total": total,
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "coats", "price": total, "quantity": 1}],
        },
    }


async def define_fixture_extensions(gateway: GatewayClient) -> None:
    for name in ("no-reward", "employee", "status-match-gold"):
        result = await gateway.execute(
            'mutation($n: String!) { defineExtension(input: {name: $n, description: "d"}) { __typename } }',
            {"n": name},
        )
        assert result.data["defineExtension"]["__typename"] == "ExtensionDefined"


async def publish_default(gateway: GatewayClient, activate: bool = True) -> dict[str, Any]:
    await define_fixture_extensions(gateway)
    result = await gateway.execute(PUBLISH, {"policy": FIXTURE, "activate": activate})
    published = result.data["publishTierPolicy"]
    assert published["__typename"] == "TierPolicy", published
    return dict(published)


async def track(gateway: GatewayClient, *events: dict[str, Any]) -> None:
    response = await gateway.http.post(
        "/v1/track", json={"events": list(events)}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.json()["accepted"] == len(events), response.json()


async def loyalty(
    gateway: GatewayClient, who: str, key: str = ADMIN_KEY, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    result = await gateway.execute(LOYALTY, {"ref": email(who)}, key=key, headers=headers)
    return dict(result.data["loyalty"])


async def test_published_policy_reads_back_in_ascending_order_with_typed_benefits(
    gateway: GatewayClient,
) -> None:
    published = await publish_default(gateway)
    assert published["version"] == 1
    assert [(t["name"], t["rank"], t["threshold"]) for t in published["tiers"]] == [
        ("MEMBER", 0, "0"),
        ("SILVER", 1, "250.00"),
        ("GOLD", 2, "1000.00"),
        ("PLATINUM", 3, "3000.00"),
    ]
    gold = {b["key"]: (b["type"], b["value"]) for b in published["tiers"][2]["benefits"]}
    assert gold["free_shipping"] == ("BOOLEAN", True)
    assert gold["discount_percent"] == ("INTEGER", 5)
    assert gold["birthday_voucher"] == ("DECIMAL", "20.0")
    active = await gateway.execute(
        "{ tierPolicy { version retention { kind } returnLockDays tiers { name } } }"
    )
    assert active.data["tierPolicy"]["version"] == 1
    assert active.data["tierPolicy"]["retention"] == {"kind": "END_OF_NEXT_YEAR"}


async def test_an_unknown_customer_at_checkout_gets_the_entry_tier(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    await publish_default(gateway)
    storefront = await gateway.create_storefront_key()
    proof = proof_for(storefront, "EMAIL", "guest.checkout@example.com", clock.now)
    guest = await loyalty(gateway, "Guest.Checkout@Example.com", key=storefront.token, headers=proof)
    assert guest["tier"] == {"name": "MEMBER"}
    assert guest["reason"] == "ENTRY"
    assert (guest["nextTier"], guest["amountToNextTier"]) == (
        {"name": "SILVER"},
        {"amount": "250.00", "currency": "EUR"},
    )
    assert guest["validUntil"] is None
    assert {"key": "free_shipping", "type": "BOOLEAN", "value": False} in guest["benefits"]
    profile = await gateway.execute(
        '{ profile(ref: {identity: {type: EMAIL, value: "guest.checkout@example.com"}}) { id } }'
    )
    assert profile.data["profile"] is None  # asking wrote nothing


async def test_no_reward_takes_gold_away_until_it_expires_without_any_write(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    await publish_default(gateway)
    await track(gateway, order("e1", "ann@example.com", "1200.00", "2026-09-01T10:00:00Z"))
    assert (await loyalty(gateway, "ann@example.com"))["tier"] == {"name": "GOLD"}

    expires = (clock.now + timedelta(days=2)).isoformat()
    result = await gateway.execute(
        'mutation($ref: ProfileRef!, $at: DateTime!) { setExtension(ref: $ref, name: "no-reward",'
        ' reason: "reward abuse under review", expiresAt: $at) { __typename } }',
        {"ref": email("ann@example.com"), "at": expires},
    )
    assert result.data["setExtension"]["__typename"] == "ExtensionChanged"
    version = await profile_version(gateway, "ann@example.com")

    excluded = await loyalty(gateway, "ann@example.com")
    assert (excluded["tier"], excluded["reason"], excluded["decidedBy"]) == (
        None,
        "NO_TIER_BY_EXTENSION",
        "no-reward",
    )
    assert "extension no-reward (set by admin-key: reward abuse under review)" in excluded["explanation"]
    assert excluded["benefits"] == []
    assert excluded["validUntil"] == expires[:10]

    clock.advance(days=2)
    back = await loyalty(gateway, "ann@example.com")
    assert (back["tier"], back["reason"]) == ({"name": "GOLD"}, "THRESHOLD")
    assert await profile_version(gateway, "ann@example.com") == version


async def profile_version(gateway: GatewayClient, who: str) -> int:
    result = await gateway.execute(
        "query($ref: ProfileRef!) { profile(ref: $ref) { version } }", {"ref": email(who)}
    )
    return int(result.data["profile"]["version"])


async def test_the_answer_explains_the_metric_pending_orders_and_what_is_next(gateway: GatewayClient) -> None:
    await publish_default(gateway)
    await track(
        gateway,
        order("e1", "bea@example.com", "300.00", "2026-08-01T10:00:00Z"),
        order("e2", "bea@example.com", "80.00", "2026-11-15T10:00:00Z"),  # inside its 30-day return window
    )
    bea = await loyalty(gateway, "bea@example.com")
    assert (bea["tier"], bea["reason"], bea["policyVersion"]) == ({"name": "SILVER"}, "THRESHOLD", 1)
    assert bea["metric"] == {
        "kind": "NET_SPEND",
        "netSpend": {"amount": "300.00", "currency": "EUR"},
        "pending": {"amount": "80.00"},
        "windowDays": 365,
    }
    assert (bea["nextTier"], bea["amountToNextTier"]["amount"]) == ({"name": "GOLD"}, "700.00")
    # credited on 2026-08-31, the order counts until 2027-08-30: SILVER is kept to the end of 2028
    assert bea["validUntil"] == "2028-12-31"


async def test_profile_loyalty_matches_the_checkout_answer(gateway: GatewayClient) -> None:
    await publish_default(gateway)
    await track(gateway, order("e1", "cem@example.com", "1500.00", "2026-06-01T10:00:00Z"))
    through_profile = await gateway.execute(
        "query($ref: ProfileRef!) { profile(ref: $ref) { loyalty { tier { name } reason validUntil } } }",
        {"ref": email("cem@example.com")},
    )
    checkout = await loyalty(gateway, "cem@example.com")
    assert through_profile.data["profile"]["loyalty"] == {
        k: checkout[k] for k in ("tier", "reason", "validUntil")
    }


async def test_what_if_answers_the_tier_after_this_cart(gateway: GatewayClient) -> None:
    await publish_default(gateway)
    await track(gateway, order("e1", "dan@example.com", "900.00", "2026-07-01T10:00:00Z"))
    query = """
    query($ref: ProfileRef!, $cart: String!) { loyaltyWhatIf(ref: $ref, cartTotal: $cart) { tier { name } } }
    """
    for cart, tier in (("99.99", "SILVER"), ("100.00", "GOLD"), ("2100.00", "PLATINUM")):
        result = await gateway.execute(query, {"ref": email("dan@example.com"), "cart": cart})
        assert result.data["loyaltyWhatIf"]["tier"] == {"name": tier}, cart
    bad = await gateway.execute(query, {"ref": email("dan@example.com"), "cart": "-5"})
    assert bad.error_codes == ["BAD_USER_INPUT"]
    assert bad.body["errors"][0]["extensions"]["field"] == "cartTotal"


async def test_tier_distribution_sums_to_the_active_profiles(gateway: GatewayClient) -> None:
    await publish_default(gateway)
    await track(
        gateway,
        order("e1", "gold@example.com", "1200.00", "2026-09-01T10:00:00Z"),
        order("e2", "silver@example.com", "400.00", "2026-09-01T10:00:00Z"),
        order("e3", "member@example.com", "10.00", "2026-09-01T10:00:00Z"),
        order("e4", "later@example.com", "1200.00", "2026-11-19T10:00:00Z"),  # not past its return window
    )
    # an anonymous visitor's profile merged into a known customer is not counted twice
    anonymous = {
        "id": "v1",
        "type": "page_view",
        "at": "2026-11-19T10:00:00Z",
        "channel": "web",
        "anonymousId": "anon-7",
        "properties": {},
    }
    await track(gateway, anonymous)
    merged = await gateway.execute(
        'mutation { identify(anonymousId: "anon-7", identities: [{type: EMAIL, value: "gold@example.com"}])'
        " { ... on Identified { mergedProfileIds } } }"
    )
    assert len(merged.data["identify"]["mergedProfileIds"]) == 1

    result = await gateway.execute("{ tierDistribution { policyVersion total tiers { tier profiles } } }")
    distribution = result.data["tierDistribution"]
    assert distribution["tiers"] == [
        {"tier": "MEMBER", "profiles": 2},
        {"tier": "SILVER", "profiles": 1},
        {"tier": "GOLD", "profiles": 1},
        {"tier": "PLATINUM", "profiles": 0},
        {"tier": None, "profiles": 0},
    ]
    assert distribution["total"] == 4 == sum(t["profiles"] for t in distribution["tiers"])


async def test_a_bad_policy_is_refused_and_nothing_is_stored(gateway: GatewayClient) -> None:
    await define_fixture_extensions(gateway)
    cases = [
        (FIXTURE | {"tiers": [*FIXTURE["tiers"][:2], FIXTURE["tiers"][1]]}, "policy.tiers[2].name"),
        (FIXTURE | {"tiers": [FIXTURE["tiers"][1]]}, "policy.tiers[0].threshold"),
        (
            FIXTURE | {"overrides": [{"extension": "vip", "effect": "NO_TIER"}]},
            "policy.overrides[0].extension",
        ),
        (FIXTURE | {"windowDays": 5000}, "policy.windowDays"),
        (
            FIXTURE | {"retention": {"kind": "ROLLING", "days": 1000}},
            "policy",
        ),  # looks back further than kept
    ]
    for policy, field in cases:
        result = await gateway.execute(PUBLISH, {"policy": policy, "activate": True})
        refused = result.data["publishTierPolicy"]
        assert (refused["__typename"], refused["field"]) == ("InvalidInputError", field), refused
    listed = await gateway.execute("{ tierPolicies { version } tierPolicy { version } }")
    assert listed.data == {"tierPolicies": [], "tierPolicy": None}
    assert (await loyalty(gateway, "ann@example.com"))["reason"] == "NO_POLICY"


async def test_earlier_versions_stay_readable_and_can_be_activated_again(gateway: GatewayClient) -> None:
    await publish_default(gateway)
    tiers = FIXTURE["tiers"]
    cheaper = FIXTURE | {"tiers": [tiers[0], tiers[1] | {"threshold": "100.00"}, *tiers[2:]]}
    second = await gateway.execute(PUBLISH, {"policy": cheaper, "activate": False})
    assert second.data["publishTierPolicy"]["version"] == 2
    assert (await gateway.execute("{ tierPolicy { version } }")).data["tierPolicy"]["version"] == 1

    activated = await gateway.execute(
        "mutation { activateTierPolicy(version: 2) { ... on TierPolicy { version } } }"
    )
    assert activated.data["activateTierPolicy"] == {"version": 2}
    both = await gateway.execute(
        "{ tierPolicy { version } old: tierPolicy(version: 1) { version tiers { name } } }"
    )
    assert both.data["tierPolicy"] == {"version": 2}
    assert [t["name"] for t in both.data["old"]["tiers"]] == ["MEMBER", "SILVER", "GOLD", "PLATINUM"]

    missing = await gateway.execute(
        "mutation { activateTierPolicy(version: 9) {"
        " __typename ... on TierPolicyNotFoundError { version } } }"
    )
    assert missing.data["activateTierPolicy"] == {"__typename": "TierPolicyNotFoundError", "version": 9}


ONE_TIER = {
    "metric": "NET_SPEND",
    "windowDays": 365,
    "retention": {"kind": "NONE"},
    "tiers": [{"name": "MEMBER", "threshold": "0", "benefits": [{"key": "newsletter", "value": True}]}],
    "overrides": [{"extension": "no-reward", "effect": "NO_TIER"}],
}


async def test_a_one_tier_policy_answers_loyalty_and_the_distribution(gateway: GatewayClient) -> None:
    await define_fixture_extensions(gateway)
    published = await gateway.execute(PUBLISH, {"policy": ONE_TIER, "activate": True})
    assert published.data["publishTierPolicy"]["__typename"] == "TierPolicy"
    await track(gateway, order("e1", "ann@example.com", "80.00", "2026-09-01T10:00:00Z"))
    await track(gateway, order("e2", "bob@example.com", "10.00", "2026-09-01T10:00:00Z"))

    ann = await loyalty(gateway, "ann@example.com")
    assert (ann["tier"], ann["reason"], ann["nextTier"], ann["amountToNextTier"]) == (
        {"name": "MEMBER"},
        "ENTRY",
        None,
        None,
    )
    result = await gateway.execute("{ tierDistribution { total tiers { tier profiles } } }")
    assert result.data["tierDistribution"]["tiers"] == [
        {"tier": "MEMBER", "profiles": 2},
        {"tier": None, "profiles": 0},
    ]


UNCHANGED = """
mutation($policy: TierPolicyInput!, $activate: Boolean!) {
  publishTierPolicy(policy: $policy, activate: $activate) {
    __typename ... on TierPolicy { version } ... on TierPolicyUnchangedError { message version }
  }
}
"""


async def test_a_policy_the_same_as_the_active_or_latest_version_is_refused_as_unchanged(
    gateway: GatewayClient,
) -> None:
    await publish_default(gateway)
    same = FIXTURE | {"tiers": [tier | {"threshold": f"{tier['threshold']}0"} for tier in FIXTURE["tiers"]]}
    again = await gateway.execute(UNCHANGED, {"policy": same, "activate": True})  # 250.000 is 250.00
    assert again.data["publishTierPolicy"] == {
        "__typename": "TierPolicyUnchangedError",
        "version": 1,
        "message": "the policy is unchanged: it is the same as version 1, the active policy",
    }
    tiers = FIXTURE["tiers"]
    cheaper = FIXTURE | {"tiers": [tiers[0], tiers[1] | {"threshold": "100.00"}, *tiers[2:]]}
    second = await gateway.execute(UNCHANGED, {"policy": cheaper, "activate": False})
    assert second.data["publishTierPolicy"] == {"__typename": "TierPolicy", "version": 2}
    latest = await gateway.execute(UNCHANGED, {"policy": cheaper, "activate": True})
    assert latest.data["publishTierPolicy"]["version"] == 2
    assert latest.data["publishTierPolicy"]["message"].endswith(
        "the latest policy; activate version 2 instead"
    )
    free = tiers[1]["benefits"][0]
    typed = FIXTURE | {"tiers": [tiers[0], tiers[1] | {"benefits": [free | {"value": 0}]}, *tiers[2:]]}
    assert free["value"] is False  # false and 0 are different benefits
    third = await gateway.execute(UNCHANGED, {"policy": typed, "activate": False})
    assert third.data["publishTierPolicy"] == {"__typename": "TierPolicy", "version": 3}
    policies = await gateway.execute("{ tierPolicies { version } tierPolicy { version } }")
    assert policies.data == {
        "tierPolicies": [{"version": 1}, {"version": 2}, {"version": 3}],
        "tierPolicy": {"version": 1},
    }

"""A storefront key is public: without a shopper proof it acts for its own anonymous visitor
only; with one, for the shopper the proof names. Server keys are unchanged."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.api.test_loyalty import FIXTURE, PUBLISH
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, StorefrontKey, running
from tests.shopper_proofs import mint, p256_key_pair

ANNA, DAAN, SANNE = (
    "anna.storefront@example.com",
    "daan.storefront@example.nl",
    "sanne.storefront@example.com",
)
VISITOR = "7d1c0f1e-5a4b-4c49-9b1a-2f3e4d5c6b7a"  # a UUID v4, as a browser mints it
PROFILE = """
query($ref: ProfileRef!) {
  profile(ref: $ref) { id extensionNames consents { purpose granted } loyalty { tier { name } } }
}
"""
SET_CONSENT = """
mutation($ref: ProfileRef!, $granted: Boolean!) {
  setConsent(ref: $ref, consent: {purpose: "email_marketing", granted: $granted, source: "account-page"}) {
    __typename
    ... on ConsentSet { profile { consents { purpose granted } } }
    ... on Error { message }
  }
}
"""
IDENTIFY = """
mutation($anon: String, $identities: [IdentityInput!]!) {
  identify(anonymousId: $anon, identities: $identities) {
    __typename
    ... on Identified { mergedProfileIds profile { id } }
    ... on Error { message }
  }
}
"""
LOYALTY = "query($ref: ProfileRef!) { loyalty(ref: $ref) { tier { name } } }"
ADMIN_VIEW = (
    "query($ref: ProfileRef!) { profile(ref: $ref) { id identities { value } consents { granted } } }"
)


def email(value: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": value}}


def anonymous(value: str = VISITOR) -> dict[str, Any]:
    return {"identity": {"type": "ANONYMOUS_ID", "value": value}}


def event(kind: str, who: dict[str, Any], number: int, **properties: Any) -> dict[str, Any]:
    target = who["identity"]
    address = {"anonymousId": target["value"]} if target["type"] == "ANONYMOUS_ID" else {"identity": target}
    return {
        "id": f"sf-{kind}-{number}",
        "type": kind,
        "at": "2026-11-20T09:00:00Z",
        "channel": "web",
        **address,
        "properties": properties,
    }


def order(who: str, number: int, total: str) -> dict[str, Any]:
    items = [{"sku": "A1", "price": total, "quantity": 1}]
    return event(
        "order_completed",
        email(who),
        number,
        orderId=f"SF-{number}",
        total=total,
        currency="EUR",
        items=items,
    )


class Shop:
    """Three customers with orders, extensions shown and not shown, and a storefront key."""

    def __init__(self, gateway: GatewayClient, clock: FrozenClock, key: StorefrontKey) -> None:
        self.gateway, self.clock, self.key = gateway, clock, key

    def proof(self, who: str, **claims: Any) -> dict[str, str]:
        return {
            "shopper-proof": mint(self.key.secret, self.key.key_id, f"email:{who}", self.clock.now, **claims)
        }

    async def as_storefront(
        self, document: str, variables: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        result = await self.gateway.execute(document, variables, key=self.key.token, headers=headers)
        assert result.status == 200, result.body
        return result.body

    async def track(
        self, events: list[dict[str, Any]], key: str, headers: dict[str, str] | None = None
    ) -> Any:
        response = await self.gateway.http.post(
            "/v1/track",
            json={"events": events},
            headers={"authorization": f"Bearer {key}", **(headers or {})},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def admin_view(self, who: str) -> dict[str, Any]:
        found = (await self.gateway.execute(ADMIN_VIEW, {"ref": email(who)})).data["profile"]
        assert isinstance(found, dict)
        return found


async def open_shop(gateway: GatewayClient, clock: FrozenClock) -> Shop:
    shown_or_not = (("employee", False), ("vip", True), ("no-reward", True), ("status-match-gold", True))
    for name, shown in shown_or_not:
        defined = await gateway.execute(
            "mutation($n: String!, $s: Boolean!) { defineExtension(input: {name: $n, description: 'd',"
            " shownToShopper: $s}) { __typename } }".replace("'", '"'),
            {"n": name, "s": shown},
        )
        assert defined.data["defineExtension"]["__typename"] == "ExtensionDefined"
    published = await gateway.execute(PUBLISH, {"policy": FIXTURE, "activate": True})
    assert published.data["publishTierPolicy"]["__typename"] == "TierPolicy"
    shop = Shop(gateway, clock, await gateway.create_storefront_key())
    accepted = await shop.track(
        [order(ANNA, 1, "120.00"), order(DAAN, 2, "80.00"), order(SANNE, 3, "40.00")], ADMIN_KEY
    )
    assert accepted["accepted"] == 3, accepted
    for name in ("employee", "vip"):
        set_ = await gateway.execute(
            "mutation($r: ProfileRef!, $n: String!) {"
            ' setExtension(ref: $r, name: $n, reason: "r") { __typename } }',
            {"r": email(ANNA), "n": name},
        )
        assert set_.data["setExtension"]["__typename"] == "ExtensionChanged"
    return shop


@pytest.fixture
async def shop(gateway: GatewayClient, clock: FrozenClock) -> Shop:
    return await open_shop(gateway, clock)


def refusal(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] in (None, {"profile": None}, {"loyalty": None}), body
    (error,) = body["errors"]
    assert error["extensions"]["type"] == "NotPermittedError", error
    assert isinstance(error, dict)
    return error


async def test_without_a_proof_a_storefront_key_reaches_no_known_customer(shop: Shop) -> None:
    merged = await shop.as_storefront(
        IDENTIFY, {"identities": [email(DAAN)["identity"], email(SANNE)["identity"]]}
    )
    assert merged["data"]["identify"]["__typename"] == "NotPermittedError"
    assert "needs a shopper proof" in merged["data"]["identify"]["message"]
    consent = await shop.as_storefront(SET_CONSENT, {"ref": email(ANNA), "granted": False})
    assert consent["data"]["setConsent"]["__typename"] == "NotPermittedError"
    read = refusal(await shop.as_storefront(PROFILE, {"ref": email(ANNA)}))
    assert read["extensions"]["missing"] == "no_proof"
    assert "Shopper-Proof header" in read["message"]
    refusal(await shop.as_storefront(LOYALTY, {"ref": email(ANNA)}))
    forged = await shop.track([order(ANNA, 4, "5000.00")], shop.key.token)
    assert forged["results"][0]["status"] == "rejected"
    assert "order_completed comes from the shop's servers" in forged["results"][0]["reason"]
    mutation = await shop.as_storefront(
        "mutation($e: [EventInput!]!) { track(events: $e) { results { status reason } } }",
        {
            "e": [
                {
                    "at": "2026-11-20T09:00:00Z",
                    "channel": "WEB",
                    "ref": email(ANNA),
                    "payload": {
                        "orderCompleted": {
                            "orderId": "SF-5",
                            "total": "5.00",
                            "currency": "EUR",
                            "items": [{"sku": "A1", "price": "5.00"}],
                        }
                    },
                }
            ]
        },
    )
    assert "storefront key may not send it" in mutation["data"]["track"]["results"][0]["reason"]
    daan, sanne = await shop.admin_view(DAAN), await shop.admin_view(SANNE)
    assert daan["id"] != sanne["id"]  # nothing merged
    assert (await shop.admin_view(ANNA))["consents"] == []  # no consent changed
    orders = await shop.gateway.execute(
        "query($r: ProfileRef!) { profile(ref: $r) { metrics { orders } } }", {"r": email(ANNA)}
    )
    assert orders.data["profile"]["metrics"]["orders"] == 1  # the forged orders are not counted


async def test_server_keys_still_do_what_they_did(shop: Shop) -> None:
    ingest = await shop.gateway.create_key("INGEST")
    merged = await shop.gateway.execute(
        IDENTIFY, {"identities": [email(DAAN)["identity"], email(SANNE)["identity"]]}, key=ingest
    )
    assert len(merged.data["identify"]["mergedProfileIds"]) == 1
    consent = await shop.gateway.execute(
        SET_CONSENT.replace("profile { consents { purpose granted } }", "profile { id }"),
        {"ref": email(ANNA), "granted": False},
        key=ingest,
    )
    assert consent.data["setConsent"]["__typename"] == "ConsentSet"
    assert (await shop.admin_view(ANNA))["consents"] == [{"granted": False}]
    assert (await shop.track([order(ANNA, 6, "10.00")], ingest))["accepted"] == 1


async def test_a_proof_for_anna_reads_and_changes_anna_and_nobody_else(shop: Shop) -> None:
    proof = shop.proof(ANNA)
    body = await shop.as_storefront(PROFILE, {"ref": email(ANNA)}, proof)
    anna = body["data"]["profile"]
    assert anna["extensionNames"] == ["vip"]  # employee is not the shopper's business
    assert anna["loyalty"]["tier"] is not None
    hidden = await shop.as_storefront(
        'query($ref: ProfileRef!) { profile(ref: $ref) { employee: hasExtension(name: "employee") } }',
        {"ref": email(ANNA)},
        proof,
    )
    assert "not defined as shown to the shopper" in hidden["errors"][0]["message"]
    changed = await shop.as_storefront(SET_CONSENT, {"ref": email(ANNA), "granted": True}, proof)
    assert changed["data"]["setConsent"]["profile"]["consents"] == [
        {"purpose": "email_marketing", "granted": True}
    ]
    other = refusal(await shop.as_storefront(PROFILE, {"ref": email(DAAN)}, proof))
    assert other["extensions"]["missing"] == "other_shopper"
    not_hers = await shop.as_storefront(SET_CONSENT, {"ref": email(DAAN), "granted": False}, proof)
    assert not_hers["data"]["setConsent"]["__typename"] == "NotPermittedError"
    assert (await shop.admin_view(DAAN))["consents"] == []


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (
            lambda shop: shop.proof(ANNA, exp=int((shop.clock.now - timedelta(hours=1)).timestamp())),
            "has expired",
        ),
        (
            lambda shop: {"shopper-proof": shop.proof(ANNA)["shopper-proof"][:-4] + "AAAA"},
            "signature does not verify",
        ),
        (
            lambda shop: {"shopper-proof": mint("x" * 43, shop.key.key_id, f"email:{ANNA}", shop.clock.now)},
            "signature does not verify",
        ),
        (
            lambda shop: {
                "shopper-proof": "eyJhbGciOiJub25lIn0."
                + shop.proof(ANNA)["shopper-proof"].split(".")[1]
                + "."
            },
            "signed with 'none'",
        ),
    ],
    ids=["expired", "tampered", "wrongly-signed", "alg-none"],
)
async def test_a_bad_proof_is_refused_naming_why(
    shop: Shop, spoil: Callable[[Shop], dict[str, str]], reason: str
) -> None:
    error = refusal(await shop.as_storefront(PROFILE, {"ref": email(ANNA)}, spoil(shop)))
    assert reason in error["message"], error
    assert error["extensions"]["missing"] == "proof_refused"


async def test_the_shops_public_key_can_sign_proofs_instead(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    private, pem = p256_key_pair()
    key = await gateway.create_storefront_key("shop-app", proof_public_key=pem)
    assert key.secret is None
    await gateway.execute(
        "mutation($r: ProfileRef!) { upsertProfile(input: {ref: $r}) { __typename } }", {"r": email(ANNA)}
    )
    proof = {"shopper-proof": mint(private, key.key_id, f"email:{ANNA}", clock.now, algorithm="ES256")}
    read = await gateway.execute(PROFILE, {"ref": email(ANNA)}, key=key.token, headers=proof)
    assert read.data["profile"]["id"]
    hs256 = {"shopper-proof": mint("y" * 43, key.key_id, f"email:{ANNA}", clock.now)}
    refused = await gateway.execute(PROFILE, {"ref": email(ANNA)}, key=key.token, headers=hs256)
    assert "this key accepts only ES256" in refused.body["errors"][0]["message"]


async def test_the_visitor_acts_for_itself_and_is_linked_to_its_proven_shopper(shop: Shop) -> None:
    viewed = await shop.track([event("product_view", anonymous(), 1, sku="A1")], shop.key.token)
    assert viewed["accepted"] == 1
    banner = await shop.as_storefront(SET_CONSENT, {"ref": anonymous(), "granted": False})
    assert banner["data"]["setConsent"]["__typename"] == "ConsentSet"
    short = await shop.as_storefront(SET_CONSENT, {"ref": anonymous("anon-7f3c2a91"), "granted": False})
    assert "at least 22 characters" in short["data"]["setConsent"]["message"]
    linked = await shop.as_storefront(
        IDENTIFY, {"anon": VISITOR, "identities": [email(ANNA)["identity"]]}, shop.proof(ANNA)
    )
    assert len(linked["data"]["identify"]["mergedProfileIds"]) == 1
    anna = await shop.as_storefront(PROFILE, {"ref": email(ANNA)}, shop.proof(ANNA))
    assert anna["data"]["profile"]["id"] == (await shop.admin_view(ANNA))["id"]


async def test_a_storefront_never_merges_two_known_customers(shop: Shop) -> None:
    other_visitor = "0b6f4c8e-2f7d-4b8a-9c1e-5d4a3b2c1f0e"
    await shop.gateway.execute(IDENTIFY, {"anon": other_visitor, "identities": [email(DAAN)["identity"]]})
    joined = await shop.as_storefront(
        IDENTIFY, {"anon": other_visitor, "identities": [email(ANNA)["identity"]]}, shop.proof(ANNA)
    )
    assert joined["data"]["identify"]["__typename"] == "MergeBlockedError"
    assert (await shop.admin_view(ANNA))["id"] != (await shop.admin_view(DAAN))["id"]


async def test_the_answer_is_the_same_whether_the_identity_exists_or_not(shop: Shop) -> None:
    for document in (PROFILE, LOYALTY):
        known = await shop.as_storefront(document, {"ref": email(ANNA)})
        unknown = await shop.as_storefront(document, {"ref": email("nobody.storefront@example.com")})
        assert known["errors"][0]["message"].replace(ANNA, "") == unknown["errors"][0]["message"].replace(
            "nobody.storefront@example.com", ""
        )
        assert known["data"] == unknown["data"]


async def test_refusals_are_counted_and_a_client_past_its_limit_is_slowed(
    store_uri: str, database_name: str, clock: FrozenClock
) -> None:
    settings = Settings(
        mongodb_uri=store_uri, database=database_name, admin_key=ADMIN_KEY, metrics_token=SecretStr("scrape")
    )
    async with running(create_app(settings, clock=clock)) as http:
        gateway = GatewayClient(http)
        key = await gateway.create_storefront_key("counted")
        statuses = [
            (await gateway.execute(LOYALTY, {"ref": email(f"guess{n}@example.com")}, key=key.token)).status
            for n in range(22)
        ]
        assert statuses[:20] == [200] * 20
        assert statuses[20:] == [429, 429]
        scraped = await http.get("/metrics", headers={"authorization": "Bearer scrape"})
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
        }
        assert (
            samples[("profilegate_storefront_refusals_total", (("key", "counted"), ("missing", "no_proof")))]
            >= 20
        )
        assert samples[("profilegate_storefront_refusals_limited_total", (("key", "counted"),))] >= 2
        visitor = await gateway.execute(LOYALTY, {"ref": anonymous()}, key=key.token)
        assert visitor.status == 429  # the same client, until its bucket refills


async def test_a_proof_used_again_holds_until_it_expires(shop: Shop) -> None:
    proof = shop.proof(ANNA)  # 15 minutes
    for _ in range(2):  # the second time from the proofs verified before
        assert (await shop.as_storefront(PROFILE, {"ref": email(ANNA)}, proof))["data"]["profile"]["id"]
    shop.clock.advance(minutes=16)
    error = refusal(await shop.as_storefront(PROFILE, {"ref": email(ANNA)}, proof))
    assert "has expired" in error["message"]

"""Identity resolution: an anonymous visitor becomes a known customer, histories merged."""

from typing import Any

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.gateway import FrozenClock, GatewayClient, running

TRACK = "mutation($events: [EventInput!]!) { track(events: $events) { accepted } }"
IDENTIFY = """
mutation Identify($anon: String, $identities: [IdentityInput!]!, $traits: JSON) {
  identify(anonymousId: $anon, identities: $identities, traits: $traits) {
    __typename
    ... on Identified { created mergedProfileIds profile { id identities { type value } traits mergedFrom } }
    ... on MergeBlockedError { field message }
  }
}
"""
METRICS = """
query($ref: ProfileRef!) {
  profile(ref: $ref) { id metrics { orders netSpend { amount } views: events(type: PRODUCT_VIEW) } }
}
"""
EMAIL = {"type": "EMAIL", "value": "ann@example.com"}


def view(event_id: str, anon: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-19T08:00:00Z",
        "channel": "WEB",
        "anonymousId": anon,
        "payload": {"productView": {"sku": "A1", "category": "shoes"}},
    }


def order(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-18T08:00:00Z",
        "channel": "STORE",
        "ref": {"identity": EMAIL},
        "payload": {
            "orderCompleted": {
                "orderId": f"order-{event_id}",
                "total": "80.00",
                "currency": "EUR",
                "items": [{"sku": "B1", "price": "80.00"}],
                "storeId": "store-berlin-01",
            }
        },
    }


async def identify(gateway: GatewayClient, **variables: Any) -> dict[str, Any]:
    payload = (await gateway.execute(IDENTIFY, variables)).data["identify"]
    assert isinstance(payload, dict)
    return payload


async def test_identify_merges_an_anonymous_history_into_the_known_customer(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    await gateway.execute(TRACK, {"events": [order("o1")]})
    known = (await gateway.execute(METRICS, {"ref": {"identity": EMAIL}})).data["profile"]
    clock.advance(minutes=1)
    await gateway.execute(TRACK, {"events": [view("v1", "anon-1"), view("v2", "anon-1")]})
    anon_ref = {"identity": {"type": "ANONYMOUS_ID", "value": "anon-1"}}
    anonymous = (await gateway.execute(METRICS, {"ref": anon_ref})).data["profile"]
    assert anonymous["id"] != known["id"]

    done = await identify(gateway, anon="anon-1", identities=[EMAIL], traits={"firstName": "Ann"})
    assert done["__typename"] == "Identified"
    assert done["mergedProfileIds"] == [anonymous["id"]]
    profile = done["profile"]
    assert profile["id"] == known["id"]  # the older profile wins
    assert profile["mergedFrom"] == [anonymous["id"]]
    assert {i["value"] for i in profile["identities"]} == {"ann@example.com", "anon-1"}
    assert profile["traits"] == {"firstName": "Ann"}

    for ref in (anon_ref, {"id": anonymous["id"]}, {"identity": EMAIL}):
        merged = (await gateway.execute(METRICS, {"ref": ref})).data["profile"]
        assert merged == {
            "id": known["id"],
            "metrics": {"orders": 1, "netSpend": {"amount": "80.00"}, "views": 2},
        }

    # Later events for the anonymous id land on the merged profile; replays stay duplicates.
    await gateway.execute(TRACK, {"events": [view("v1", "anon-1"), view("v3", "anon-1")]})
    after = (await gateway.execute(METRICS, {"ref": {"identity": EMAIL}})).data["profile"]
    assert after["metrics"]["views"] == 3

    log = await gateway.execute(
        "query($ref: ProfileRef!) { merges(ref: $ref) { loser winner by reason identities } }",
        {"ref": {"identity": EMAIL}},
    )
    assert log.data["merges"] == [
        {
            "loser": anonymous["id"],
            "winner": known["id"],
            "by": "admin-key",
            "reason": "identify: anonymousId:anon-1, email:ann@example.com",
            "identities": ["anonymousId:anon-1"],
        }
    ]


async def test_identify_without_profiles_creates_one_and_again_changes_nothing(
    gateway: GatewayClient,
) -> None:
    first = await identify(gateway, anon="anon-2", identities=[EMAIL])
    assert (first["created"], first["mergedProfileIds"]) == (True, [])
    again = await identify(gateway, anon="anon-2", identities=[EMAIL])
    assert (again["created"], again["mergedProfileIds"]) == (False, [])
    assert again["profile"]["id"] == first["profile"]["id"]


async def test_a_blocked_identifier_never_links_profiles(settings: Settings, clock: FrozenClock) -> None:
    shop = settings.model_copy(update={"blocked_identities": ("anonymousId:pos-terminal-7",)})
    async with running(create_app(shop, clock=clock)) as http:
        gateway = GatewayClient(http)
        await gateway.execute(TRACK, {"events": [order("o1")]})
        blocked = await identify(gateway, anon="pos-terminal-7", identities=[EMAIL])
        assert blocked["__typename"] == "MergeBlockedError"
        assert blocked["field"] == "anonymousId"
        also = await identify(gateway, identities=[{"type": "ANONYMOUS_ID", "value": "pos-terminal-7"}])
        assert also["field"] == "identities[0].value"
        profile = (await gateway.execute(METRICS, {"ref": {"identity": EMAIL}})).data["profile"]
        assert profile["metrics"]["orders"] == 1


async def test_the_identity_cap_blocks_a_merge(gateway: GatewayClient) -> None:
    many = [{"type": "CUSTOMER_ID", "value": f"C-{i}"} for i in range(15)]
    await identify(gateway, anon="anon-a", identities=many[:10])
    await identify(gateway, anon="anon-b", identities=many[10:])
    blocked = await identify(
        gateway,
        anon="anon-a",
        identities=[many[0], many[10], *[{"type": "LOYALTY_CARD", "value": f"LC{i}"} for i in range(5)]],
    )
    assert blocked["__typename"] == "MergeBlockedError"
    assert blocked["field"] == "identities"
    assert "cap of 20" in blocked["message"]

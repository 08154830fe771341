"""mergeProfiles and unmergeProfiles over GraphQL: the customer-id guard, forcing it, undoing it."""

from typing import Any

from tests.gateway import FrozenClock, GatewayClient

IDENTIFY = """
mutation($identities: [IdentityInput!]!) {
  identify(identities: $identities) {
    __typename
    ... on Identified { profile { id } }
    ... on MergeBlockedError { field message }
  }
}
"""
TRACK = "mutation($events: [EventInput!]!) { track(events: $events) { accepted } }"
MERGE = """
mutation($into: ProfileRef!, $from: ProfileRef!, $reason: String!) {
  mergeProfiles(into: $into, from: $from, reason: $reason) {
    __typename
    ... on ProfilesMerged { mergedProfileId profile { id metrics { orders } } }
    ... on Error { message }
  }
}
"""
UNMERGE = """
mutation($profileId: ID!, $reason: String!) {
  unmergeProfiles(profileId: $profileId, reason: $reason) {
    __typename
    ... on ProfilesUnmerged {
      profile { id mergedFrom identities { type value } metrics { orders } }
      restored { id mergedFrom identities { type value } metrics { orders } }
    }
    ... on InvalidInputError { field message }
    ... on UnmergeOutOfOrderError { field unmergeFirst message }
  }
}
"""
PROFILE = "query($ref: ProfileRef!) { profile(ref: $ref) { id metrics { orders } } }"
AUDIT = """
query($action: String!) {
  auditLog(filter: {action: $action}) { entries { action profileId outcome arguments } }
}
"""


def customer(number: str) -> dict[str, str]:
    return {"type": "CUSTOMER_ID", "value": number}


def email(name: str) -> dict[str, str]:
    return {"type": "EMAIL", "value": f"{name}@example.com"}


def order(event_id: str, name: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-18T08:00:00Z",
        "channel": "WEB",
        "ref": {"identity": email(name)},
        "payload": {
            "orderCompleted": {
                "orderId": f"order-{event_id}",
                "total": "80.00",
                "currency": "EUR",
                "items": [{"sku": "B1", "price": "80.00"}],
            }
        },
    }


async def customer_with_orders(
    gateway: GatewayClient, clock: FrozenClock, name: str, number: str, orders: int
) -> str:
    created = await gateway.execute(IDENTIFY, {"identities": [customer(number), email(name)]})
    await gateway.execute(TRACK, {"events": [order(f"{name}-{n}", name) for n in range(orders)]})
    clock.advance(minutes=1)
    profile_id = created.data["identify"]["profile"]["id"]
    assert isinstance(profile_id, str)
    return profile_id


async def orders_of(gateway: GatewayClient, name: str) -> tuple[str, int]:
    profile = (await gateway.execute(PROFILE, {"ref": {"identity": email(name)}})).data["profile"]
    return profile["id"], profile["metrics"]["orders"]


async def test_different_customer_ids_merge_only_when_an_admin_forces_it_and_can_be_undone(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    ann = await customer_with_orders(gateway, clock, "ann", "C-1", 2)
    bob = await customer_with_orders(gateway, clock, "bob", "C-2", 1)

    blocked = (await gateway.execute(IDENTIFY, {"identities": [email("ann"), email("bob")]})).data["identify"]
    assert blocked["__typename"] == "MergeBlockedError"
    assert "C-1 and C-2" in blocked["message"]
    assert await orders_of(gateway, "bob") == (bob, 1)

    refs = {"into": {"identity": customer("C-1")}, "from": {"id": bob}, "reason": "same person (ticket 12)"}
    merged = (await gateway.execute(MERGE, refs)).data["mergeProfiles"]
    assert merged == {
        "__typename": "ProfilesMerged",
        "mergedProfileId": bob,
        "profile": {"id": ann, "metrics": {"orders": 3}},
    }
    assert await orders_of(gateway, "bob") == (ann, 3)
    clock.advance(minutes=1)
    await gateway.execute(TRACK, {"events": [order("bob-late", "bob")]})

    undone = (await gateway.execute(UNMERGE, {"profileId": bob, "reason": "two people"})).data[
        "unmergeProfiles"
    ]

    assert undone["__typename"] == "ProfilesUnmerged"
    assert undone["profile"] == {
        "id": ann,
        "mergedFrom": [],
        "identities": [customer("C-1"), email("ann")],
        "metrics": {"orders": 2},
    }
    assert undone["restored"] == {
        "id": bob,
        "mergedFrom": [],
        "identities": [customer("C-2"), email("bob")],
        "metrics": {"orders": 2},
    }
    assert await orders_of(gateway, "ann") == (ann, 2)
    assert await orders_of(gateway, "bob") == (bob, 2)
    again = (await gateway.execute(UNMERGE, {"profileId": bob, "reason": "again"})).data["unmergeProfiles"]
    assert again["__typename"] == "InvalidInputError"
    assert again["field"] == "profileId"
    for action, profile_id, outcomes in (
        ("mergeProfiles", ann, ["ProfilesMerged"]),
        ("unmergeProfiles", ann, ["InvalidInputError", "ProfilesUnmerged"]),
    ):
        entries = (await gateway.execute(AUDIT, {"action": action})).data["auditLog"]["entries"]
        assert [entry["outcome"] for entry in entries] == outcomes
        assert entries[-1]["profileId"] == profile_id
    unmerges = (await gateway.execute(AUDIT, {"action": "unmergeProfiles"})).data["auditLog"]["entries"]
    assert unmerges[0]["profileId"] == bob, "a refusal names the profile asked for"


async def test_a_chain_is_undone_newest_first(gateway: GatewayClient, clock: FrozenClock) -> None:
    a = await customer_with_orders(gateway, clock, "ann", "C-1", 1)
    b = await customer_with_orders(gateway, clock, "bob", "C-2", 1)
    c = await customer_with_orders(gateway, clock, "cem", "C-3", 1)
    await gateway.execute(MERGE, {"into": {"id": b}, "from": {"id": a}, "reason": "1"})
    await gateway.execute(MERGE, {"into": {"id": c}, "from": {"id": b}, "reason": "2"})

    refused = (await gateway.execute(UNMERGE, {"profileId": a, "reason": "x"})).data["unmergeProfiles"]
    assert refused["__typename"] == "UnmergeOutOfOrderError"
    assert (refused["field"], refused["unmergeFirst"]) == ("profileId", b)

    first = (await gateway.execute(UNMERGE, {"profileId": b, "reason": "x"})).data["unmergeProfiles"]
    assert (first["restored"]["metrics"], first["profile"]["metrics"]) == ({"orders": 2}, {"orders": 1})
    second = (await gateway.execute(UNMERGE, {"profileId": a, "reason": "x"})).data["unmergeProfiles"]
    assert (second["restored"]["id"], second["profile"]["id"]) == (a, b)
    assert [await orders_of(gateway, name) for name in ("ann", "bob", "cem")] == [(a, 1), (b, 1), (c, 1)]


async def test_only_admins_merge_and_unmerge(gateway: GatewayClient) -> None:
    key = await gateway.create_key("INGEST")
    for document, variables in (
        (MERGE, {"into": {"id": "x"}, "from": {"id": "y"}, "reason": "r"}),
        (UNMERGE, {"profileId": "x", "reason": "r"}),
    ):
        result = await gateway.execute(document, variables, key=key)
        assert result.error_codes == ["FORBIDDEN"]
    never = (await gateway.execute(UNMERGE, {"profileId": "nobody", "reason": "r"})).data["unmergeProfiles"]
    assert never == {"__typename": "ProfileNotFoundError"}

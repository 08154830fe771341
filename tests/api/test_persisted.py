"""Persisted operations: registered by admins, run by hash, the only thing persisted-only keys run."""

import hashlib
import json
from typing import Any

import httpx

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.feed_client import FeedSocket, serving
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient

REGISTER = """
mutation($document: String!) {
  registerPersistedOperation(document: $document) {
    __typename
    ... on PersistedOperationRegistered { created operation { id document registeredBy } }
    ... on InvalidInputError { field message }
  }
}
"""
LISTED = "{ persistedOperations { id document registeredBy } }"
DELETE = "mutation($id: String!) { deletePersistedOperation(id: $id) }"
CHECKOUT = "query Checkout($ref: ProfileRef!) { loyalty(ref: $ref) { reason } viewer { name } }"
VIEWER = "{ viewer { name } }"
VISITOR = {"identity": {"type": "ANONYMOUS_ID", "value": "3f0c9a2e-6b1d-4e7f-8a5c-1d2e3f4a5b6c"}}
ANN = {"ref": VISITOR}  # a storefront key's own visitor needs no shopper proof
CHECKOUT_ANSWER = {"loyalty": {"reason": "NO_POLICY"}, "viewer": {"name": "web"}}


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


async def register(gateway: GatewayClient, document: str) -> dict[str, Any]:
    result = await gateway.execute(REGISTER, {"document": document})
    return dict(result.data["registerPersistedOperation"])


async def persisted_only_key(gateway: GatewayClient) -> str:
    created = await gateway.execute(
        'mutation { createApiKey(name: "web", role: STOREFRONT, persistedOnly: true) {'
        " ... on ApiKeyCreated { token key { persistedOnly } } } }"
    )
    assert created.data["createApiKey"]["key"]["persistedOnly"]
    return str(created.data["createApiKey"]["token"])


async def post(gateway: GatewayClient, body: dict[str, Any], key: str = ADMIN_KEY) -> httpx.Response:
    return await gateway.http.post("/graphql", json=body, headers={"authorization": f"Bearer {key}"})


def by_hash(document_hash: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body Apollo Client's persisted-queries link sends."""
    persisted = {"version": 1, "sha256Hash": document_hash}
    return {"extensions": {"persistedQuery": persisted}, "variables": variables or {}}


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


async def test_registering_answers_the_documents_sha256_once(gateway: GatewayClient) -> None:
    registered = await register(gateway, CHECKOUT)
    assert registered["operation"] == {
        "id": sha256(CHECKOUT),
        "document": CHECKOUT,
        "registeredBy": "admin-key",
    }
    assert registered["created"]
    assert not (await register(gateway, CHECKOUT))["created"]
    listed = (await gateway.execute(LISTED)).data["persistedOperations"]
    assert listed == [registered["operation"]]


async def test_a_document_with_a_typo_is_refused_at_registration_and_not_stored(
    gateway: GatewayClient,
) -> None:
    refused = await register(gateway, "query Checkout($ref: ProfileRef!) { loyalty(ref: $ref) { reasn } }")
    assert refused["__typename"] == "InvalidInputError"
    assert refused["field"] == "document"
    assert "Cannot query field 'reasn' on type 'Loyalty'" in refused["message"]
    syntax = await register(gateway, "{ viewer { name }")
    assert syntax == {"__typename": "InvalidInputError", "field": "document", "message": syntax["message"]}
    assert "Syntax Error" in syntax["message"]
    assert (await gateway.execute(LISTED)).data["persistedOperations"] == []


async def test_a_persisted_only_key_cannot_run_an_ad_hoc_query(gateway: GatewayClient) -> None:
    await register(gateway, CHECKOUT)
    key = await persisted_only_key(gateway)

    ad_hoc = await post(gateway, {"query": CHECKOUT, "variables": ANN}, key)

    assert ad_hoc.status_code == 403
    assert codes(ad_hoc) == ["PERSISTED_QUERY_REQUIRED"]
    assert ad_hoc.json().get("data") is None


async def test_a_persisted_only_key_runs_the_registered_checkout_query_by_hash(
    gateway: GatewayClient,
) -> None:
    await register(gateway, CHECKOUT)
    key = await persisted_only_key(gateway)

    apollo = await post(gateway, by_hash(sha256(CHECKOUT), ANN), key)
    document_id = await post(gateway, {"documentId": f"sha256:{sha256(CHECKOUT)}", "variables": ANN}, key)
    over_get = await gateway.http.get(
        "/graphql",
        params={"documentId": sha256(CHECKOUT).upper(), "variables": json.dumps(ANN)},
        headers={"authorization": f"Bearer {key}"},
    )

    assert apollo.status_code == 200
    assert apollo.json() == {"data": CHECKOUT_ANSWER}
    assert document_id.json() == {"data": CHECKOUT_ANSWER}
    assert over_get.json()["data"]["viewer"] == {"name": "web"}
    for _ in range(3):  # again and again: from the documents kept per hash
        assert (await post(gateway, by_hash(sha256(CHECKOUT), ANN), key)).json() == {"data": CHECKOUT_ANSWER}


async def test_a_query_sent_with_a_registered_hash_runs_the_registered_document(
    gateway: GatewayClient,
) -> None:
    await register(gateway, CHECKOUT)
    key = await persisted_only_key(gateway)
    body = {**by_hash(sha256(CHECKOUT), ANN), "query": "{ apiKeys { name } }"}
    assert (await post(gateway, body, key)).json() == {"data": CHECKOUT_ANSWER}


async def test_an_unknown_hash_is_not_found(gateway: GatewayClient) -> None:
    key = await persisted_only_key(gateway)
    for body in (by_hash("0" * 64), {"documentId": "sha256:" + "0" * 64}):
        unknown = await post(gateway, body, key)
        assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert unknown.json().get("data") is None
        assert "0" * 64 in unknown.json()["errors"][0]["message"]


async def test_a_query_with_an_unregistered_hash_runs_as_an_ad_hoc_query(gateway: GatewayClient) -> None:
    """Apollo's link sends the query with its hash after PERSISTED_QUERY_NOT_FOUND: nothing is
    registered, the query runs as any ad-hoc query would for the key."""
    body = {**by_hash(sha256(VIEWER)), "query": VIEWER}
    storefront = await gateway.create_key("STOREFRONT")
    assert (await post(gateway, body, storefront)).json() == {"data": {"viewer": {"name": "storefront-key"}}}
    restricted = await post(gateway, body, await persisted_only_key(gateway))
    assert codes(restricted) == ["PERSISTED_QUERY_REQUIRED"]
    assert (await gateway.execute(LISTED)).data["persistedOperations"] == []


async def test_an_unrestricted_key_may_run_both(gateway: GatewayClient) -> None:
    await register(gateway, VIEWER)
    storefront = await gateway.create_key("STOREFRONT")
    assert (await gateway.execute(VIEWER, key=storefront)).data["viewer"]["name"] == "storefront-key"
    ran = await post(gateway, by_hash(sha256(VIEWER)), storefront)
    assert ran.json() == {"data": {"viewer": {"name": "storefront-key"}}}


async def test_a_persisted_operation_is_held_to_its_callers_limits(gateway: GatewayClient) -> None:
    aliased = "{ " + " ".join(f"a{n}: viewer {{ name }}" for n in range(6)) + " }"
    await register(gateway, aliased)
    storefront = await gateway.create_key("STOREFRONT")
    assert codes(await post(gateway, by_hash(sha256(aliased)), storefront)) == ["TOO_MANY_ALIASES"]
    assert len((await post(gateway, by_hash(sha256(aliased)))).json()["data"]) == 6


async def test_a_deleted_operation_stops_running_within_a_minute(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    await register(gateway, VIEWER)
    assert (await post(gateway, by_hash(sha256(VIEWER)))).json() == {
        "data": {"viewer": {"name": "admin-key"}}
    }

    assert (await gateway.execute(DELETE, {"id": sha256(VIEWER)})).data == {"deletePersistedOperation": True}
    assert (await gateway.execute(DELETE, {"id": sha256(VIEWER)})).data == {"deletePersistedOperation": False}
    assert (await gateway.execute(LISTED)).data["persistedOperations"] == []
    clock.advance(seconds=59)
    assert "data" in (await post(gateway, by_hash(sha256(VIEWER)))).json()  # still cached here
    clock.advance(seconds=1)
    assert codes(await post(gateway, by_hash(sha256(VIEWER)))) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_persisted_only_key_cannot_subscribe_with_an_ad_hoc_document(
    settings: Settings, clock: FrozenClock
) -> None:
    async with serving(create_app(settings, clock=clock)) as (base, gateway):
        key = await persisted_only_key(gateway)
        async with FeedSocket.open(base, key=key) as feed:
            await feed.subscribe()
            refused = await feed.receive()
    assert refused["type"] == "error", refused
    assert [error["extensions"]["code"] for error in refused["payload"]] == ["PERSISTED_QUERY_REQUIRED"]

"""Query limits per role, production schema settings, persisted operations."""

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.gateway import FrozenClock, GatewayClient, running

ROLES = ["STOREFRONT", "INGEST", "PARTNER", "ADMIN"]
TIGHT = {"depth": 2, "aliases": 1, "root_fields": 2, "tokens": 40, "cost": 3}
OVER = {
    "depth": ('{ profile(ref: {id: "p"}) { loyalty { reason } } }', "QUERY_TOO_DEEP", 3),
    "aliases": ("{ a: viewer { name } b: viewer { name } }", "TOO_MANY_ALIASES", 2),
    "root_fields": (
        "{ viewer { name } apiKeys { id } persistedOperations { id } }",
        "TOO_MANY_ROOT_FIELDS",
        3,
    ),
    "tokens": ("{ viewer { " + "name " * 40 + "} }", "TOO_MANY_TOKENS", 41),
    "cost": ("{ viewer { name role } apiKeys { id } }", "QUERY_TOO_COSTLY", 5),
}
UNDER = "{ viewer { name } }"


@pytest.fixture
async def tight(settings: Settings, clock: FrozenClock) -> AsyncIterator[GatewayClient]:
    limited = settings.model_copy(update={"query_limits": {role.lower(): TIGHT for role in ROLES}})
    async with running(create_app(limited, clock=clock)) as http:
        yield GatewayClient(http)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("limit", sorted(OVER))
async def test_a_query_over_a_limit_is_refused_naming_it_for_each_role(
    tight: GatewayClient, role: str, limit: str
) -> None:
    key = None if role == "ADMIN" else await tight.create_key(role)
    query, code, value = OVER[limit]
    refused = await tight.execute(query, key=key) if key else await tight.execute(query)
    assert refused.body.get("data") is None, refused.body
    [error] = refused.body["errors"]
    assert error["extensions"] == {"code": code, "limit": TIGHT[limit], "value": value}
    assert f"over the limit of {TIGHT[limit]} for the {role.lower()} role" in error["message"]
    passed = await tight.execute(UNDER, key=key) if key else await tight.execute(UNDER)
    assert passed.data["viewer"]["name"]


async def test_a_storefront_gets_tighter_limits_than_an_admin_by_default(gateway: GatewayClient) -> None:
    aliased = "{ " + " ".join(f"a{n}: viewer {{ name }}" for n in range(11)) + " }"
    storefront = await gateway.create_key("STOREFRONT")
    refused = await gateway.execute(aliased, key=storefront)
    assert refused.error_codes == ["TOO_MANY_ALIASES"]
    assert len((await gateway.execute(aliased)).data) == 11


async def test_cost_counts_the_fields_below_first_that_many_times(gateway: GatewayClient) -> None:
    query = 'query($n: Int!) { segment(key: "x") { members(first: $n) { profiles { id } } } }'
    partner = await gateway.create_key("PARTNER")
    # segment 1 + members 1 + n x (profiles 1 + id 1): 2 + 2n against the partner's 5,000
    refused = await gateway.execute(query, {"n": 2500}, key=partner)
    assert refused.body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "limit": 5000,
        "value": 5002,
    }
    allowed = await gateway.execute(query, {"n": 10}, key=partner)
    assert "QUERY_TOO_COSTLY" not in allowed.error_codes


@pytest.fixture
async def production(settings: Settings, clock: FrozenClock) -> AsyncIterator[GatewayClient]:
    async with running(create_app(settings.model_copy(update={"env": "production"}), clock=clock)) as http:
        yield GatewayClient(http)


async def test_production_hides_introspection_and_field_suggestions(production: GatewayClient) -> None:
    introspection = await production.execute("{ __schema { queryType { name } } }")
    assert "introspection" in introspection.body["errors"][0]["message"].lower()
    typo = await production.execute("{ viewr { name } }")
    assert "Did you mean" not in typo.body["errors"][0]["message"]


async def test_development_keeps_introspection(gateway: GatewayClient) -> None:
    result = await gateway.execute("{ __schema { queryType { name } } }")
    assert result.data["__schema"]["queryType"]["name"] == "Query"


REGISTER = """
mutation($document: String!) {
  registerPersistedOperation(document: $document) {
    __typename
    ... on PersistedOperationRegistered { created operation { id document registeredBy } }
    ... on InvalidInputError { field message }
  }
}
"""
CHECKOUT = "query Checkout($ref: ProfileRef!) { loyalty(ref: $ref) { reason } viewer { name } }"


async def persisted(gateway: GatewayClient, sha256: str, variables: dict[str, Any], key: str) -> Any:
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}, "variables": variables}
    response = await gateway.http.post("/graphql", json=body, headers={"authorization": f"Bearer {key}"})
    return response.json()


async def test_a_persisted_only_key_runs_registered_operations_and_nothing_else(
    gateway: GatewayClient,
) -> None:
    registered = (await gateway.execute(REGISTER, {"document": CHECKOUT})).data["registerPersistedOperation"]
    sha256 = hashlib.sha256(CHECKOUT.encode()).hexdigest()
    assert registered["operation"]["id"] == sha256
    assert registered["created"]
    again = (await gateway.execute(REGISTER, {"document": CHECKOUT})).data["registerPersistedOperation"]
    assert not again["created"]
    created = await gateway.execute(
        'mutation { createApiKey(name: "web", role: STOREFRONT, persistedOnly: true) {'
        " ... on ApiKeyCreated { token key { persistedOnly } } } }"
    )
    key = created.data["createApiKey"]["token"]
    assert created.data["createApiKey"]["key"]["persistedOnly"]
    ref = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}

    ad_hoc = await gateway.execute(CHECKOUT, {"ref": ref}, key=key)
    assert ad_hoc.error_codes == ["PERSISTED_QUERY_REQUIRED"]
    assert ad_hoc.body.get("data") is None

    ran = await persisted(gateway, sha256, {"ref": ref}, key)
    assert ran["data"] == {"loyalty": {"reason": "NO_POLICY"}, "viewer": {"name": "web"}}

    unknown = await persisted(gateway, "0" * 64, {}, key)
    assert [e["extensions"]["code"] for e in unknown["errors"]] == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_an_unrestricted_key_may_run_both(gateway: GatewayClient) -> None:
    await gateway.execute(REGISTER, {"document": UNDER})
    storefront = await gateway.create_key("STOREFRONT")
    assert (await gateway.execute(UNDER, key=storefront)).data["viewer"]["name"] == "storefront-key"
    ran = await persisted(gateway, hashlib.sha256(UNDER.encode()).hexdigest(), {}, storefront)
    assert ran["data"]["viewer"]["name"] == "storefront-key"


async def test_a_document_that_does_not_validate_is_not_registered(gateway: GatewayClient) -> None:
    refused = (await gateway.execute(REGISTER, {"document": "{ viewr { name } }"})).data
    assert refused["registerPersistedOperation"]["__typename"] == "InvalidInputError"
    assert refused["registerPersistedOperation"]["field"] == "document"
    listed = await gateway.execute("{ persistedOperations { id } }")
    assert listed.data["persistedOperations"] == []

"""Query limits per role, caps on list arguments, and the production schema settings."""

import re
from collections.abc import AsyncIterator

import pytest
from graphql import GraphQLObjectType, build_schema
from pydantic import ValidationError

from profilegate.api import persisted
from profilegate.api.limits import DEFAULT_LIMITS, QueryLimits
from profilegate.api.schema import DOCUMENT_CACHE_SIZE as VALIDATION_CACHE_SIZE
from profilegate.api.schema import schema_sdl
from profilegate.app import create_app
from profilegate.domain.keys import Role
from profilegate.settings import QUERY_LIMIT_NAMES, Settings
from profilegate.storage.documents import Database
from tests.feed_client import FeedSocket, serving
from tests.gateway import FrozenClock, GatewayClient, running

ROLES = ["STOREFRONT", "INGEST", "PARTNER", "ADMIN"]
# limit -> (value set for the test, a query exactly at it, a query one over it, code)
CASES = {
    "depth": (
        2,
        "{ viewer { name } }",
        '{ profile(ref: {id: "p"}) { loyalty { reason } } }',
        "QUERY_TOO_DEEP",
    ),
    "aliases": (
        1,
        "{ a: viewer { name } }",
        "{ a: viewer { name } b: viewer { name } }",
        "TOO_MANY_ALIASES",
    ),
    "root_fields": (
        2,
        "{ viewer { name } b: viewer { name } }",
        "{ viewer { name } b: viewer { name } c: viewer { name } }",
        "TOO_MANY_ROOT_FIELDS",
    ),
    "tokens": (
        40,
        "{ viewer { " + "name " * 35 + "} }",
        "{ viewer { " + "name " * 36 + "} }",
        "TOO_MANY_TOKENS",
    ),
    "cost": (3, "{ viewer { name role } }", "{ viewer { name role } __typename }", "QUERY_TOO_COSTLY"),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("limit", sorted(CASES))
async def test_a_query_over_a_limit_is_refused_naming_it_and_one_at_it_runs_for_each_role(
    settings: Settings, clock: FrozenClock, role: str, limit: str
) -> None:
    value, at_limit, over_limit, code = CASES[limit]
    limited = settings.model_copy(update={"query_limits": {role.lower(): {limit: value}}})
    async with running(create_app(limited, clock=clock)) as http:
        gateway = GatewayClient(http)
        key = None if role == "ADMIN" else await gateway.create_key(role)
        refused = await gateway.execute(over_limit, key=key) if key else await gateway.execute(over_limit)
        assert refused.body.get("data") is None, refused.body
        [error] = refused.body["errors"]
        # Tokens are counted no further than one past the limit: no exact value to report.
        measured = {} if limit == "tokens" else {"value": value + 1}
        assert error["extensions"] == {"code": code, "limit": value, **measured}
        assert f"over the limit of {value} for the {role.lower()} role" in error["message"]
        passed = await gateway.execute(at_limit, key=key) if key else await gateway.execute(at_limit)
        assert all(viewer["name"] for viewer in passed.data.values()), passed.body


async def test_a_query_far_over_the_token_limit_is_told_more_than_the_limit_not_a_made_up_count(
    gateway: GatewayClient,
) -> None:
    storefront = await gateway.create_key("STOREFRONT")
    query = "{ viewer { " + "name " * 9_000 + "} }"

    refused = await gateway.execute(query, key=storefront)

    [error] = refused.body["errors"]
    assert error["message"] == (
        "the query has more than 1,000 tokens, over the limit of 1,000 for the storefront role"
    )
    assert error["extensions"] == {"code": "TOO_MANY_TOKENS", "limit": 1000}


def test_by_default_a_storefront_gets_the_tightest_limits_and_an_admin_the_widest() -> None:
    order = [Role.STOREFRONT, Role.PARTNER, Role.ADMIN]
    for limit in CASES:
        values = [getattr(DEFAULT_LIMITS[role], limit) for role in order]
        assert values == sorted(values), limit
        assert getattr(DEFAULT_LIMITS[Role.INGEST], limit) == values[0], limit


async def test_a_storefront_gets_tighter_limits_than_an_admin_by_default(gateway: GatewayClient) -> None:
    aliased = "{ " + " ".join(f"a{n}: viewer {{ name }}" for n in range(6)) + " }"
    storefront = await gateway.create_key("STOREFRONT")
    refused = await gateway.execute(aliased, key=storefront)
    assert refused.error_codes == ["TOO_MANY_ALIASES"]
    assert refused.body["errors"][0]["extensions"]["limit"] == 5
    assert len((await gateway.execute(aliased)).data) == 6


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


PROFILE_REF = '{identity: {type: EMAIL, value: "ann@example.com"}}'
# Every `first` argument in the schema -> a query asking for one more than its cap, the cap
FIRST_CAPS = {
    "ProfileMetrics.categoryAffinities": (
        "{ profile(ref: " + PROFILE_REF + ") { metrics { categoryAffinities(first: 101) { category } } } }",
        100,
    ),
    "Query.merges": (f"{{ merges(ref: {PROFILE_REF}, first: 101) {{ loser }} }}", 100),
    "Query.auditLog": ("{ auditLog(first: 201) { nextCursor } }", 200),
    "Query.aggregateCheck": ("{ aggregateCheck(first: 501) { total } }", 500),
    "Segment.members": ('{ segment(key: "all") { members(first: 501) { nextCursor } } }', 500),
    "ShopPeriod.topProducts": (
        '{ shopMetrics(from: "2026-11-01", to: "2026-11-30") { total { topProducts(first: 101) { sku } } } }',
        100,
    ),
    "Destination.deliveries": ("{ destinations { deliveries(first: 201) { nextCursor } } }", 200),
    "Destination.deadLetters": ("{ destinations { deadLetters(first: 201) { nextCursor } } }", 200),
}


def test_every_first_argument_in_the_schema_is_in_the_table() -> None:
    schema = build_schema(schema_sdl())
    declared = {
        f"{name}.{field_name}"
        for name, type_ in schema.type_map.items()
        if isinstance(type_, GraphQLObjectType)
        for field_name, field in type_.fields.items()
        if "first" in field.args
    }
    assert declared == set(FIRST_CAPS)


@pytest.mark.parametrize("field", sorted(FIRST_CAPS))
async def test_first_over_its_cap_is_refused_naming_the_argument(gateway: GatewayClient, field: str) -> None:
    await gateway.execute(f"mutation {{ upsertProfile(input: {{ref: {PROFILE_REF}}}) {{ __typename }} }}")
    saved = await gateway.execute(
        'mutation { saveSegment(input: {key: "all", name: "All", rule: "orders >= 0"}) { __typename } }'
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    if field.startswith("Destination."):
        created = await gateway.execute(
            'mutation { createDestination(input: {id: "crm", name: "CRM", url: "https://1.1.1.1/hook",'
            ' send: {tiers: true}, consentPurpose: "email_marketing"}) { __typename } }'
        )
        assert created.data["createDestination"]["__typename"] == "DestinationCreated", created.body
    query, cap = FIRST_CAPS[field]
    refused = await gateway.execute(query)
    [error] = refused.body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    assert error["message"] == f"first: must be between 1 and {cap}"
    at_cap = await gateway.execute(query.replace(f"first: {cap + 1}", f"first: {cap}"))
    assert "errors" not in at_cap.body, at_cap.body


@pytest.fixture
async def production(settings: Settings, clock: FrozenClock) -> AsyncIterator[GatewayClient]:
    async with running(create_app(settings.model_copy(update={"env": "production"}), clock=clock)) as http:
        yield GatewayClient(http)


async def test_production_hides_introspection_and_field_suggestions(production: GatewayClient) -> None:
    introspection = await production.execute("{ __schema { queryType { name } } }")
    assert introspection.body.get("data") is None
    assert "introspection" in introspection.body["errors"][0]["message"].lower()
    typename = await production.execute('{ __type(name: "Profile") { name } }')
    assert typename.body.get("data") is None
    typo = await production.execute("{ viewr { name } }")
    assert typo.body["errors"][0]["message"] == "Cannot query field 'viewr' on type 'Query'."


async def test_development_keeps_introspection_and_suggestions(gateway: GatewayClient) -> None:
    result = await gateway.execute("{ __schema { queryType { name } } }")
    assert result.data["__schema"]["queryType"]["name"] == "Query"
    typo = await gateway.execute("{ viewr { name } }")
    assert "Did you mean 'viewer'?" in typo.body["errors"][0]["message"]


async def test_production_serves_no_graphiql(production: GatewayClient) -> None:
    page = await production.http.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in page.text.lower()


async def test_production_masks_an_internal_error_with_an_id(
    production: GatewayClient, database: Database
) -> None:
    await database["extension_definitions"].insert_one({"_id": "broken"})  # lacks its fields
    result = await production.execute("{ extensionDefinitions { name } }")
    [error] = result.body["errors"]
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"Internal server error (id {error_id})"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
    assert "KeyError" not in str(result.body)


async def test_a_subscription_over_a_limit_is_refused_naming_it(
    settings: Settings, clock: FrozenClock
) -> None:
    limited = settings.model_copy(update={"query_limits": {"partner": {"depth": 1}}})
    async with serving(create_app(limited, clock=clock)) as (base, gateway):
        partner = await gateway.create_key("PARTNER")
        async with FeedSocket.open(base, key=partner) as feed:
            await feed.subscribe()
            refused = await feed.receive()
    assert refused["type"] == "error", refused
    [error] = refused["payload"]
    assert error["extensions"] == {"code": "QUERY_TOO_DEEP", "limit": 1, "value": 2}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"browser": {"depth": 4}}, "unknown role 'browser'"),
        ({"storefront": {"dept": 4}}, "unknown limits ['dept'] for storefront"),
        ({"partner": {"cost": 0}}, "the limits for partner must be at least 1"),
    ],
)
def test_query_limits_in_the_settings_are_checked_at_start_up(overrides: object, named: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(named)):
        Settings(query_limits=overrides)


def test_query_limits_in_the_settings_name_the_query_limits() -> None:
    assert set(QUERY_LIMIT_NAMES) == set(QueryLimits.__dataclass_fields__)


async def test_checks_remembered_per_document_still_answer_each_request_and_stay_bounded(
    settings: Settings, clock: FrozenClock
) -> None:
    """Token counts and validation results are kept per document text: the same invalid query
    is refused alike every time, also after more distinct documents than the cache holds, and
    the ad-hoc validation cache never holds more than its bound."""
    unlimited = settings.model_copy(
        update={"rate_limit_admin_per_second": 1e6, "rate_limit_admin_burst": 10**6}
    )
    async with running(create_app(unlimited, clock=clock)) as http:
        await _answers_alike_past_the_cache(GatewayClient(http))


async def _answers_alike_past_the_cache(gateway: GatewayClient) -> None:
    invalid = "{ profile(ref: {id: 1}) { noSuchField } }"
    first = (await gateway.execute(invalid)).body["errors"]
    for number in range(VALIDATION_CACHE_SIZE + 50):
        await gateway.execute("{ __typename }" + " " * number)  # distinct texts, no operation names
    assert len(persisted._ADHOC_VALIDATED) <= VALIDATION_CACHE_SIZE
    again = (await gateway.execute(invalid)).body["errors"]
    assert [e["message"] for e in again] == [e["message"] for e in first]
    assert any("noSuchField" in e["message"] for e in first)

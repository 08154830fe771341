"""Every root field against every role: the permission table is the specification."""

import graphql
import pytest

from profilegate.api.schema import schema_sdl
from tests.gateway import GatewayClient

ADMIN, STOREFRONT, INGEST, PARTNER = "ADMIN", "STOREFRONT", "INGEST", "PARTNER"
ROLES = (ADMIN, STOREFRONT, INGEST, PARTNER)
REF = '{identity: {type: EMAIL, value: "roles@example.com"}}'

# field -> (document, roles that may call it)
ROOT_FIELDS: dict[str, tuple[str, frozenset[str]]] = {
    "Query.profile": (f"{{ profile(ref: {REF}) {{ id }} }}", frozenset({ADMIN, STOREFRONT, PARTNER})),
    "Query.consentPurposes": ("{ consentPurposes }", frozenset(ROLES)),
    "Query.extensionDefinitions": ("{ extensionDefinitions { name } }", frozenset({ADMIN, PARTNER})),
    "Query.viewer": ("{ viewer { role } }", frozenset(ROLES)),
    "Query.apiKeys": ("{ apiKeys { id } }", frozenset({ADMIN})),
    # a partner key reads it only when granted shopMetrics (tests/api/test_shop_metrics_access.py)
    "Query.shopMetrics": (
        '{ shopMetrics(from: "2026-11-19", to: "2026-11-19") { total { visitors } } }',
        frozenset({ADMIN}),
    ),
    "Mutation.upsertProfile": (
        f"mutation {{ upsertProfile(input: {{ref: {REF}}}) {{ __typename }} }}",
        frozenset({ADMIN, INGEST}),
    ),
    "Mutation.setConsent": (
        f'mutation {{ setConsent(ref: {REF}, consent: {{purpose: "ads", granted: false,'
        ' source: "cookie-banner"}) { __typename } }',
        frozenset({ADMIN, INGEST, STOREFRONT}),
    ),
    "Mutation.defineExtension": (
        'mutation { defineExtension(input: {name: "vip", description: "VIP"}) { __typename } }',
        frozenset({ADMIN}),
    ),
    "Mutation.setExtension": (
        f'mutation {{ setExtension(ref: {REF}, name: "vip", reason: "r") {{ __typename }} }}',
        frozenset({ADMIN, PARTNER}),
    ),
    "Mutation.removeExtension": (
        f'mutation {{ removeExtension(ref: {REF}, name: "vip", reason: "r") {{ __typename }} }}',
        frozenset({ADMIN, PARTNER}),
    ),
    "Mutation.track": (
        f'mutation {{ track(events: [{{at: "2026-11-20T09:00:00Z", channel: WEB, ref: {REF},'
        " payload: {pageView: {}}}]) { accepted } }",
        frozenset({ADMIN, INGEST, STOREFRONT}),
    ),
    "Mutation.identify": (
        'mutation { identify(anonymousId: "anon-roles", identities: []) { __typename } }',
        frozenset({ADMIN, INGEST, STOREFRONT}),
    ),
    "Query.merges": (f"{{ merges(ref: {REF}) {{ loser }} }}", frozenset({ADMIN})),
    "Mutation.createApiKey": (
        'mutation { createApiKey(name: "k", role: INGEST) { __typename } }',
        frozenset({ADMIN}),
    ),
    "Mutation.revokeApiKey": ('mutation { revokeApiKey(idOrName: "k") { keys { id } } }', frozenset({ADMIN})),
    "Query.loyalty": (f"{{ loyalty(ref: {REF}) {{ reason }} }}", frozenset({ADMIN, STOREFRONT, PARTNER})),
    "Query.loyaltyWhatIf": (
        f'{{ loyaltyWhatIf(ref: {REF}, cartTotal: "10.00") {{ reason }} }}',
        frozenset({ADMIN, STOREFRONT, PARTNER}),
    ),
    "Query.tierPolicy": ("{ tierPolicy { version } }", frozenset({ADMIN, STOREFRONT, PARTNER})),
    "Query.tierPolicies": ("{ tierPolicies { version } }", frozenset({ADMIN})),
    "Query.tierDistribution": ("{ tierDistribution { total } }", frozenset({ADMIN})),
    "Mutation.publishTierPolicy": (
        "mutation { publishTierPolicy(policy: {metric: NET_SPEND, windowDays: 365, retention: {kind: NONE},"
        ' tiers: [{name: "MEMBER", threshold: "0"}]}) { __typename } }',
        frozenset({ADMIN}),
    ),
    "Query.segments": ("{ segments { key } }", frozenset({ADMIN})),
    "Query.segment": ('{ segment(key: "vip") { key } }', frozenset({ADMIN})),
    "Query.previewSegment": ('{ previewSegment(rule: "orders >= 1") { __typename } }', frozenset({ADMIN})),
    "Mutation.saveSegment": (
        'mutation { saveSegment(input: {key: "buyers", name: "Buyers", rule: "orders >= 1"})'
        " { __typename } }",
        frozenset({ADMIN}),
    ),
    "Mutation.deleteSegment": (
        'mutation { deleteSegment(key: "buyers") { __typename } }',
        frozenset({ADMIN}),
    ),
    "Mutation.activateTierPolicy": (
        "mutation { activateTierPolicy(version: 1) { __typename } }",
        frozenset({ADMIN}),
    ),
    "Query.exportProfile": (f"{{ exportProfile(ref: {REF}) {{ __typename }} }}", frozenset({ADMIN})),
    "Mutation.eraseProfile": (
        f'mutation {{ eraseProfile(ref: {REF}, reason: "art. 17") {{ __typename }} }}',
        frozenset({ADMIN}),
    ),
    "Query.auditLog": ("{ auditLog { nextCursor } }", frozenset({ADMIN})),
    "Query.persistedOperations": ("{ persistedOperations { id } }", frozenset({ADMIN})),
    "Mutation.registerPersistedOperation": (
        'mutation { registerPersistedOperation(document: "{ viewer { name } }") { __typename } }',
        frozenset({ADMIN}),
    ),
    "Mutation.deletePersistedOperation": (
        'mutation { deletePersistedOperation(id: "x") }',
        frozenset({ADMIN}),
    ),
    "Mutation.defineCouponCampaign": (
        'mutation { defineCouponCampaign(name: "spring") { __typename } }',
        frozenset({ADMIN}),
    ),
    "Mutation.issueCoupon": (
        f'mutation {{ issueCoupon(ref: {REF}, campaign: "spring", channel: EMAIL,'
        ' expiresAt: "2027-01-01T00:00:00Z") { __typename } }',
        frozenset({ADMIN, PARTNER}),
    ),
    "Mutation.issueCoupons": (
        'mutation { issueCoupons(campaign: "spring", count: 1, expiresAt: "2027-01-01T00:00:00Z")'
        " { __typename } }",
        frozenset({ADMIN, PARTNER}),
    ),
    "Query.couponPerformance": (
        '{ couponPerformance(campaign: "spring") { issued } }',
        frozenset({ADMIN, PARTNER}),
    ),
}

# Profile field -> roles that may read it (the root field admits ADMIN, STOREFRONT and PARTNER)
PROFILE_FIELDS: dict[str, frozenset[str]] = {
    "id": frozenset({ADMIN, STOREFRONT, PARTNER}),
    "version": frozenset({ADMIN, STOREFRONT, PARTNER}),
    "createdAt": frozenset({ADMIN, STOREFRONT, PARTNER}),
    "updatedAt": frozenset({ADMIN, STOREFRONT, PARTNER}),
    "identities { type value }": frozenset({ADMIN}),
    "traits": frozenset({ADMIN, PARTNER}),
    "consents { purpose }": frozenset({ADMIN, STOREFRONT, PARTNER}),
    'consented(purpose: "ads")': frozenset({ADMIN, STOREFRONT, PARTNER}),
    "extensions { name }": frozenset({ADMIN, PARTNER}),
    "extensionNames": frozenset({ADMIN, STOREFRONT, PARTNER}),
    'hasExtension(name: "vip")': frozenset({ADMIN, STOREFRONT, PARTNER}),
    "extensionLog { action }": frozenset({ADMIN}),
    "metrics { orders }": frozenset({ADMIN, PARTNER}),
    "loyalty { reason }": frozenset({ADMIN, STOREFRONT, PARTNER}),
    "segments": frozenset({ADMIN, STOREFRONT, PARTNER}),
    'inSegment(key: "vip")': frozenset({ADMIN, STOREFRONT, PARTNER}),
    'explainSegment(key: "vip") { held }': frozenset({ADMIN, PARTNER}),
    "mergedFrom": frozenset({ADMIN}),
}


def schema_fields(type_name: str) -> set[str]:
    schema = graphql.build_schema(schema_sdl())
    root = schema.get_type(type_name)
    assert isinstance(root, graphql.GraphQLObjectType)
    return set(root.fields)


def test_the_table_covers_every_root_field() -> None:
    expected = {f"Query.{f}" for f in schema_fields("Query")} | {
        f"Mutation.{f}" for f in schema_fields("Mutation")
    }
    assert set(ROOT_FIELDS) == expected


def test_the_table_covers_every_profile_field() -> None:
    covered = {field.split("(")[0].split(" ")[0] for field in PROFILE_FIELDS}
    assert covered == schema_fields("Profile")


async def keys_by_role(gateway: GatewayClient) -> dict[str, str]:
    return {role: await gateway.create_key(role) for role in ROLES}


@pytest.mark.parametrize("field", sorted(ROOT_FIELDS))
async def test_root_field_admits_exactly_its_roles(gateway: GatewayClient, field: str) -> None:
    document, admitted = ROOT_FIELDS[field]
    keys = await keys_by_role(gateway)
    for role, key in keys.items():
        result = await gateway.execute(document, key=key)
        forbidden = "FORBIDDEN" in result.error_codes
        assert result.status == 200
        assert forbidden == (role not in admitted), (role, result.body)
        if role in admitted:
            assert "errors" not in result.body, (role, result.body)


async def test_profile_fields_admit_exactly_their_roles(gateway: GatewayClient) -> None:
    await gateway.execute(f"mutation {{ upsertProfile(input: {{ref: {REF}}}) {{ __typename }} }}")
    keys = await keys_by_role(gateway)
    for field, admitted in PROFILE_FIELDS.items():
        for role in (ADMIN, STOREFRONT, PARTNER):
            result = await gateway.execute(f"{{ profile(ref: {REF}) {{ {field} }} }}", key=keys[role])
            assert ("FORBIDDEN" in result.error_codes) == (role not in admitted), (field, role, result.body)


async def test_a_storefront_key_cannot_define_or_set_extensions(gateway: GatewayClient) -> None:
    storefront = await gateway.create_key(STOREFRONT)
    for field in ("Mutation.defineExtension", "Mutation.setExtension", "Mutation.createApiKey"):
        result = await gateway.execute(ROOT_FIELDS[field][0], key=storefront)
        assert result.body["data"] is None
        assert result.error_codes == ["FORBIDDEN"]
    listed = await gateway.execute("{ extensionDefinitions { name } }")
    assert listed.data == {"extensionDefinitions": []}

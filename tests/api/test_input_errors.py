"""One error vocabulary: every mutation, given bad input, names the field as the client wrote it
(the argument first, the schema's field names, list indexes in brackets) and says in the
product's words what form it expects, never in the words of the libraries under it.

The table holds at least one bad input per mutation of the schema; a mutation added without a
row fails ``test_every_mutation_has_bad_inputs_in_the_table``.
"""

from dataclasses import dataclass
from typing import Any

import graphql
import pytest

from profilegate.api.schema import schema_sdl
from tests.gateway import GatewayClient

SCHEMA = graphql.build_schema(schema_sdl())
# What only a library says: pydantic's, graphql-core's and the parsers' own phrases.
LIBRARY_PHRASES = (
    "Value error",
    "should match pattern",
    "should have at least",
    "Input should be",
    "String should",
    "Tuple should",
    "List should",
    "after validation",
    "Field required",
    "Extra inputs",
    "Value cannot represent",
    "cannot represent",
    "Expected value of type",
    "Expected 4 digits",
    "does not exist in",
    "OneOf Input Object",
    "was not provided",
    "is not defined by type",
    "Invalid isoformat",
    "decimal.",
    "InvalidOperation",
    "NumberParseException",
    "Traceback",
    "[type=",
    ".bool",
    ".str",
    ".int",
    ".decimal",
)
ANN = '{identity: {type: EMAIL, value: "ann@example.com"}}'
SETUP = (
    'mutation { defineExtension(input: {name: "vip", description: "Very important"}) { __typename } }',
    'mutation { defineCouponCampaign(name: "flyer") { __typename } }',
    "mutation { upsertProfile(input: {ref: " + ANN + "}) { __typename } }",
)
DESTINATION = 'id: "ads", name: "Ads", consentPurpose: "ads"'
POLICY = "metric: NET_SPEND, windowDays: 365, retention: {kind: NONE}"
EVENT = (
    '{at: "2026-11-20T09:00:00Z", channel: WEB, anonymousId: "anon-7f3c2a91", payload: {custom: {name: "x"}}}'
)


@dataclass(frozen=True)
class Bad:
    mutation: str
    arguments: str
    field: str
    says: str  # the expected form or the limit, in the message
    variables: dict[str, Any] | None = None
    declared: str = ""  # the operation's variable definitions


BAD_INPUTS = [
    Bad(
        "upsertProfile",
        'input: {ref: {identity: {type: EMAIL, value: "nope"}}}',
        "input.ref.identity.value",
        "e.g. ann@example.com",
    ),
    Bad(
        "upsertProfile",
        'input: {identities: [{type: PHONE, value: "abc"}]}',
        "input.identities[0].value",
        "international form",
    ),
    Bad("upsertProfile", "input: {traits: [1, 2]}", "input.traits", "must be a JSON object"),
    Bad(
        "upsertProfile",
        "input: {traits: {a: {b: {c: {d: {e: {f: 1}}}}}}}",
        "input.traits.a.b.c.d.e",
        "limit of",
    ),
    Bad(
        "upsertProfile",
        'input: {consents: [{purpose: "telepathy", granted: true, source: "x"}]}',
        "input.consents[0].purpose",
        "known: ",
    ),
    Bad(
        "upsertProfile",
        'input: {ref: {id: "a", identity: {type: EMAIL, value: "a@example.com"}}}',
        "input.ref",
        "exactly one of id, identity",
    ),
    Bad(
        "upsertProfile",
        "input: {identities: $ids}",
        "input.identities",
        "limit of 20",
        {"ids": [{"type": "CUSTOMER_ID", "value": f"c{n}"} for n in range(21)]},
        "$ids: [IdentityInput!]!",
    ),
    Bad(
        "setConsent",
        f'ref: {ANN}, consent: {{purpose: "telepathy", granted: true, source: "x"}}',
        "consent.purpose",
        "known: ",
    ),
    Bad(
        "setConsent",
        f'ref: {ANN}, consent: {{purpose: "ads", granted: true, source: "a b"}}',
        "consent.source",
        "letters, digits",
    ),
    Bad(
        "setConsent",
        f'ref: {ANN}, consent: {{purpose: "ads", source: "x"}}',
        "consent.granted",
        "is required",
    ),
    Bad(
        "identify",
        'identities: [{type: EMAIL, value: "nope"}]',
        "identities[0].value",
        "e.g. ann@example.com",
    ),
    Bad("identify", 'identities: [], anonymousId: "x y"', "anonymousId", "printable ASCII"),
    Bad(
        "identify",
        'identities: [], anonymousId: "anon-7f3c2a91", traits: 5',
        "traits",
        "must be a JSON object",
    ),
    Bad(
        "mergeProfiles",
        'into: {identity: {type: EMAIL, value: "nope"}}, from: {id: "p"}, reason: "same person"',
        "into.identity.value",
        "e.g. ann@example.com",
    ),
    Bad("mergeProfiles", f'into: {ANN}, from: {{id: "p"}}, reason: ""', "reason", "must not be empty"),
    Bad("unmergeProfiles", 'profileId: "p", reason: ""', "reason", "must not be empty"),
    Bad(
        "defineExtension", 'input: {name: "No Reward", description: "d"}', "input.name", "lower-case letters"
    ),
    Bad(
        "defineExtension",
        'input: {name: "ok", description: "d", defaultLifetimeDays: 0}',
        "input.defaultLifetimeDays",
        "between 1 and 36500",
    ),
    Bad(
        "setExtension",
        f'ref: {ANN}, name: "vip", reason: "r", expiresAt: "31.12.2027"',
        "expiresAt",
        "expected ISO 8601 such as 2027-12-31T23:59:59Z",
    ),
    Bad(
        "setExtension",
        f'ref: {ANN}, name: "vip", reason: "r", expiresAt: $at',
        "expiresAt",
        "expected ISO 8601",
        {"at": "31.12.2027"},
        "$at: DateTime",
    ),
    Bad("setExtension", f'ref: {ANN}, name: "vip", reason: ""', "reason", "must not be empty"),
    Bad("removeExtension", f'ref: {ANN}, name: "vip", reason: ""', "reason", "must not be empty"),
    Bad(
        "track",
        'events: [{at: "yesterday", channel: WEB, payload: {custom: {name: "x"}}}]',
        "events[0].at",
        "ISO 8601",
    ),
    Bad(
        "track", f"events: [{EVENT}, {EVENT.replace('WEB', 'SPACE')}]", "events[1].channel", "WEB, APP, STORE"
    ),
    Bad(
        "track",
        "events: $events",
        "events",
        "limit of 500 events per batch",
        {
            "events": [
                {
                    "at": "2026-11-20T09:00:00Z",
                    "channel": "WEB",
                    "anonymousId": "anon-7f3c2a91",
                    "payload": {"custom": {"name": "x"}},
                }
            ]
            * 501
        },
        "$events: [EventInput!]!",
    ),
    Bad("publishTierPolicy", f"policy: {{{POLICY}, tiers: []}}", "policy.tiers", "at least 1 entry"),
    Bad(
        "publishTierPolicy",
        f'policy: {{{POLICY}, tiers: [{{name: "gold", threshold: "0"}}]}}',
        "policy.tiers[0].name",
        "upper-case letters",
    ),
    Bad(
        "publishTierPolicy",
        f'policy: {{{POLICY}, tiers: [{{name: "GOLD", threshold: "abc"}}]}}',
        "policy.tiers[0].threshold",
        "decimal number",
    ),
    Bad(
        "publishTierPolicy",
        f'policy: {{{POLICY}, tiers: [{{name: "GOLD", threshold: "0", '
        f'benefits: [{{key: "x", value: {{a: 1}}}}]}}]}}',
        "policy.tiers[0].benefits[0].value",
        "true or false, a whole number, a decimal number or a text",
    ),
    Bad(
        "publishTierPolicy",
        f'policy: {{{POLICY}, tiers: [{{name: "A", threshold: "0"}}, {{name: "B", threshold: "100"}}, '
        f'{{name: "C", threshold: "50"}}]}}',
        "policy.tiers[2].threshold",
        "must ascend",
    ),
    Bad("activateTierPolicy", "version: 99999999999", "version", "whole number between"),
    Bad(
        "saveSegment",
        'input: {key: "Bad", name: "n", rule: "orders >= 1"}',
        "input.key",
        "lower-case letters",
    ),
    Bad("saveSegment", 'input: {key: "ok", name: "n", rule: "orders >="}', "input.rule", "line 1"),
    Bad("deleteSegment", "key: 5", "key", "a text"),
    Bad("createApiKey", 'name: "", role: ADMIN', "name", "1-80 characters"),
    Bad(
        "createApiKey",
        'name: "web", role: STOREFRONT, allowedOrigins: ["nope"]',
        "allowedOrigins[0]",
        "scheme://host",
    ),
    Bad("createApiKey", 'name: "feed", role: PARTNER, fields: ["bogus"]', "fields[0]", "identities, traits"),
    Bad("createApiKey", 'name: "feed", role: SUPERUSER', "role", "STOREFRONT"),
    Bad("revokeApiKey", "idOrName: 5", "idOrName", "a text"),
    Bad("eraseProfile", f'ref: {ANN}, reason: ""', "reason", "must not be empty"),
    Bad("registerPersistedOperation", 'document: "{"', "document", "does not parse"),
    Bad("deletePersistedOperation", "id: 5", "id", "a text"),
    Bad("defineCouponCampaign", 'name: "Bad Name"', "name", "lower-case letters"),
    Bad(
        "issueCoupon",
        f'ref: {ANN}, campaign: "flyer", channel: WEB, expiresAt: "tomorrow"',
        "expiresAt",
        "ISO 8601",
    ),
    Bad(
        "issueCoupons", 'campaign: "flyer", count: 0, expiresAt: "2026-12-01T00:00:00Z"', "count", "1 to 1000"
    ),
    Bad(
        "createDestination",
        f'input: {{{DESTINATION}, url: "ftp://example.com/x", send: {{tiers: true}}}}',
        "input.url",
        "https://",
    ),
    Bad(
        "createDestination",
        f'input: {{{DESTINATION}, url: "https://example.com/x", send: {{segments: [""]}}}}',
        "input.send.segments[0]",
        "must not be empty",
    ),
    Bad(
        "updateDestination",
        f'input: {{{DESTINATION}, url: "https://example.com/x", send: {{tiers: true}}, maxBatch: 501}}',
        "input.maxBatch",
        "1 to 500",
    ),
    Bad("pauseDestination", "id: 5", "id", "a text"),
    Bad("resumeDestination", "id: 5", "id", "a text"),
    Bad("rotateDestinationSecret", "id: 5", "id", "a text"),
    Bad("deleteDestination", "id: 5", "id", "a text"),
    Bad("resyncDestination", "id: 5", "id", "a text"),
    Bad("replayDeadLetter", "batchId: 5", "batchId", "a text"),
    Bad(
        "resendDestinationRange",
        'id: "ads", from: "tomorrow", to: "2026-11-20T00:00:00Z"',
        "from",
        "ISO 8601",
    ),
    Bad(
        "resendDestinationRange",
        'id: "ads", from: "2026-11-20T00:00:00Z", to: "2026-11-19T00:00:00Z"',
        "to",
        "must be after from",
    ),
]


def test_every_mutation_has_bad_inputs_in_the_table() -> None:
    mutation = SCHEMA.mutation_type
    assert mutation is not None
    assert {bad.mutation for bad in BAD_INPUTS} == set(mutation.fields)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[f"{bad.mutation}-{bad.field}" for bad in BAD_INPUTS])
async def test_bad_input_names_the_field_as_written_and_the_expected_form(
    gateway: GatewayClient, bad: Bad
) -> None:
    for document in SETUP:
        await gateway.execute(document)
    declared = f"({bad.declared})" if bad.declared else ""
    query = f"mutation{declared} {{ {bad.mutation}({bad.arguments}) {selection(bad.mutation)} }}"

    result = await gateway.execute(query, bad.variables)

    field_named, message = refusal(result.body, bad.mutation)
    assert field_named == bad.field, result.body
    assert message.startswith(f"{bad.field}: "), message
    assert bad.says in message, message
    assert not [phrase for phrase in LIBRARY_PHRASES if phrase in message], message


def selection(name: str) -> str:
    """``__typename``, and ``field message`` of each error type the result may be that has a field."""
    mutation = SCHEMA.mutation_type
    assert mutation is not None
    result = graphql.get_named_type(mutation.fields[name].type)
    if not isinstance(result, graphql.GraphQLUnionType):
        return "" if graphql.is_leaf_type(result) else "{ __typename }"
    errors = [member.name for member in result.types if "field" in member.fields]
    return "{ __typename " + " ".join(f"... on {error} {{ field message }}" for error in errors) + " }"


def refusal(body: dict[str, Any], mutation: str) -> tuple[str, str]:
    """The field and message of the one error in the answer: a request error or a typed result."""
    if body.get("errors"):
        [error] = body["errors"]
        assert error["extensions"]["code"] in {"BAD_USER_INPUT", "BATCH_TOO_LARGE"}, error
        return error["extensions"]["field"], error["message"]
    answer = body["data"][mutation]
    assert "field" in answer, answer
    return answer["field"], answer["message"]


async def test_an_unused_variable_is_told_so_whatever_its_value(gateway: GatewayClient) -> None:
    result = await gateway.execute("query Unused($id: ID!) { __typename }", {"id": None})

    [error] = result.body["errors"]
    assert error["message"] == "Variable '$id' is never used in operation 'Unused'."


async def test_a_variable_used_twice_is_named_by_its_name(gateway: GatewayClient) -> None:
    query = (
        'mutation($at: DateTime) { a: setExtension(ref: {id: "p"}, name: "vip", reason: "r", expiresAt: $at)'
        ' { __typename } b: setExtension(ref: {id: "q"}, name: "vip", reason: "r", expiresAt: $at)'
        " { __typename } }"
    )

    result = await gateway.execute(query, {"at": "tomorrow"})

    [error] = result.body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "$at"}
    assert error["message"] == (
        '$at: "tomorrow" is not a date and time; expected ISO 8601 such as 2027-12-31T23:59:59Z'
    )

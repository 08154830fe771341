"""Profiles over GraphQL: upsert with merge patch, identities, consents, typed errors."""

from typing import Any

from tests.gateway import GatewayClient

UPSERT = """
mutation Upsert($input: UpsertProfileInput!) {
  upsertProfile(input: $input) {
    __typename
    ... on ProfileUpserted { created profile { id version traits identities { type value }
                                                consents { purpose granted source } } }
    ... on Error { message }
    ... on InvalidInputError { field }
    ... on IdentityConflictError { identity profileId }
    ... on ProfileNotFoundError { ref }
  }
}
"""
PROFILE = """
query Profile($ref: ProfileRef!) {
  profile(ref: $ref) { id version traits identities { type value } }
}
"""
SET_CONSENT = """
mutation Consent($ref: ProfileRef!, $consent: ConsentInput!) {
  setConsent(ref: $ref, consent: $consent) {
    __typename
    ... on ConsentSet { profile { id consents { purpose granted source at } } }
    ... on InvalidInputError { field message }
  }
}
"""


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


def by_email(value: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": value}}


async def upsert(gateway: GatewayClient, **input: Any) -> dict[str, Any]:
    result = await gateway.execute(UPSERT, {"input": input})
    payload = result.data["upsertProfile"]
    assert isinstance(payload, dict)
    return payload


async def test_upsert_creates_then_merges_traits(gateway: GatewayClient) -> None:
    created = await upsert(
        gateway,
        ref=by_email("  Ann.Schmidt@Example.COM "),
        traits={"firstName": "Ann", "address": {"city": "Berlin", "zip": "10115"}, "tmp": 1},
    )
    assert created["__typename"] == "ProfileUpserted"
    assert created["created"] is True
    assert created["profile"]["identities"] == [{"type": "EMAIL", "value": "ann.schmidt@example.com"}]

    updated = await upsert(
        gateway,
        ref=by_email("ann.schmidt@example.com"),
        traits={"address": {"city": "Hamburg", "zip": None}, "tmp": None, "lastName": "Schmidt"},
    )
    assert updated["created"] is False
    assert updated["profile"]["id"] == created["profile"]["id"]
    assert updated["profile"]["version"] == 2
    assert updated["profile"]["traits"] == {
        "firstName": "Ann",
        "lastName": "Schmidt",
        "address": {"city": "Hamburg"},
    }


async def test_profile_is_found_by_every_identity_and_by_id(gateway: GatewayClient) -> None:
    created = await upsert(
        gateway,
        ref=by_email("bo@example.com"),
        identities=[
            {"type": "PHONE", "value": "030 12345678"},
            {"type": "LOYALTY_CARD", "value": "lc 4000-1234"},
            {"type": "CUSTOMER_ID", "value": "C-100234"},
        ],
    )
    profile_id = created["profile"]["id"]
    refs = [
        {"id": profile_id},
        by_email("BO@example.com"),
        {"identity": {"type": "PHONE", "value": "+49 30 12345678"}},
        {"identity": {"type": "LOYALTY_CARD", "value": "LC40001234"}},
        {"identity": {"type": "CUSTOMER_ID", "value": "C-100234"}},
    ]
    for ref in refs:
        found = (await gateway.execute(PROFILE, {"ref": ref})).data["profile"]
        assert found["id"] == profile_id, ref
    unknown = await gateway.execute(PROFILE, {"ref": by_email("nobody@example.com")})
    assert unknown.data == {"profile": None}


async def test_an_identity_clash_is_a_typed_error_and_stores_nothing(gateway: GatewayClient) -> None:
    first = await upsert(gateway, ref=by_email("cara@example.com"))
    clash = await upsert(
        gateway,
        ref=by_email("dan@example.com"),
        identities=[{"type": "CUSTOMER_ID", "value": "C-77"}, {"type": "EMAIL", "value": "cara@example.com"}],
        traits={"firstName": "Dan"},
    )
    assert clash["__typename"] == "IdentityConflictError"
    assert clash["identity"] == "email:cara@example.com"
    assert clash["profileId"] == first["profile"]["id"]
    for ref in (by_email("dan@example.com"), {"identity": {"type": "CUSTOMER_ID", "value": "C-77"}}):
        assert (await gateway.execute(PROFILE, {"ref": ref})).data == {"profile": None}


async def test_one_of_refuses_both_or_neither(gateway: GatewayClient) -> None:
    both = await gateway.execute(PROFILE, {"ref": {"id": "x", **by_email("a@example.com")}})
    neither = await gateway.execute(PROFILE, {"ref": {}})
    for result in (both, neither):
        assert result.body["data"] is None
        assert "exactly one" in result.body["errors"][0]["message"].lower()


async def test_malformed_identities_name_the_field(gateway: GatewayClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ref": by_email("not-an-email")}, "input.ref.identity.value"),
        (
            {"identities": [{"type": "EMAIL", "value": "ok@example.com"}, {"type": "PHONE", "value": "12"}]},
            "input.identities[1].value",
        ),
        ({"identities": [{"type": "CUSTOMER_ID", "value": "has space"}]}, "input.identities[0].value"),
    ]
    for input, field in cases:
        payload = await upsert(gateway, **input)
        assert payload["__typename"] == "InvalidInputError", payload
        assert payload["field"] == field
    query = await gateway.execute(PROFILE, {"ref": by_email("@@")})
    assert query.body["data"] == {"profile": None}
    assert query.body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "ref.identity.value"}


async def test_oversized_traits_are_refused_and_the_profile_is_unchanged(gateway: GatewayClient) -> None:
    ref = by_email("eve@example.com")
    await upsert(gateway, ref=ref, traits={"name": "Eve"})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"blob": "x" * 20_000}, "input.traits"),
        ({f"k{i}": i for i in range(300)}, "input.traits"),
        ({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "input.traits.a.b.c.d.e"),
        ({"bad.key": 1}, "input.traits.bad.key"),
        ({"$where": 1}, "input.traits.$where"),
        ({"nul\u0000": 1}, "input.traits.nul\\u0000"),
        ({"deep": _nested(120)}, "input.traits.deep.n.n.n.n"),
    ]
    for traits, field in cases:
        payload = await upsert(gateway, ref=ref, traits=traits)
        assert payload["__typename"] == "InvalidInputError", traits
        assert payload["field"] == field
    stored = (await gateway.execute(PROFILE, {"ref": ref})).data["profile"]
    assert stored["traits"] == {"name": "Eve"}
    assert stored["version"] == 1


async def test_traits_must_be_an_object(gateway: GatewayClient) -> None:
    payload = await upsert(gateway, ref=by_email("fay@example.com"), traits=[1, 2])
    assert payload == {
        "__typename": "InvalidInputError",
        "message": 'input.traits: must be a JSON object, e.g. {"city": "Berlin"}',
        "field": "input.traits",
    }


async def test_an_unknown_id_is_a_typed_not_found(gateway: GatewayClient) -> None:
    payload = await upsert(gateway, ref={"id": "no-such-profile"}, traits={"a": 1})
    assert payload["__typename"] == "ProfileNotFoundError"
    assert payload["ref"] == "id no-such-profile"


async def test_consents_are_recorded_per_purpose(gateway: GatewayClient) -> None:
    ref = {"identity": {"type": "ANONYMOUS_ID", "value": "anon-7f3c2a91"}}
    consent = {"purpose": "ads", "granted": False, "source": "cookie-banner"}
    first = await gateway.execute(SET_CONSENT, {"ref": ref, "consent": consent})
    profile = first.data["setConsent"]["profile"]
    assert [(c["purpose"], c["granted"], c["source"]) for c in profile["consents"]] == [
        ("ads", False, "cookie-banner")
    ]
    again = await gateway.execute(SET_CONSENT, {"ref": ref, "consent": consent})
    assert again.data["setConsent"]["profile"]["consents"] == profile["consents"]
    unknown = await gateway.execute(SET_CONSENT, {"ref": ref, "consent": {**consent, "purpose": "telepathy"}})
    payload = unknown.data["setConsent"]
    assert payload["__typename"] == "InvalidInputError"
    assert payload["field"] == "consent.purpose"
    assert "email_marketing" in payload["message"]

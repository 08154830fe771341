"""Extensions over GraphQL: the catalogue, provenance, idempotence and expiry."""

from typing import Any

from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient

DEFINE = """
mutation Define($input: DefineExtensionInput!) {
  defineExtension(input: $input) {
    __typename
    ... on ExtensionDefined { outcome definition { name description partnerSettable defaultLifetimeDays } }
    ... on InvalidInputError { field message }
  }
}
"""
SET = """
mutation Set($ref: ProfileRef!, $name: String!, $reason: String!, $expiresAt: DateTime) {
  setExtension(ref: $ref, name: $name, reason: $reason, expiresAt: $expiresAt) {
    __typename
    ... on ExtensionChanged { changed profile { extensions { name at by reason source expiresAt } } }
    ... on Error { message }
    ... on InvalidInputError { field }
    ... on UnknownExtensionError { name }
  }
}
"""
REMOVE = """
mutation Remove($ref: ProfileRef!, $name: String!, $reason: String!) {
  removeExtension(ref: $ref, name: $name, reason: $reason) {
    __typename
    ... on ExtensionChanged { changed profile { extensionNames extensionLog { action name reason by } } }
  }
}
"""
READ = """
query Read($ref: ProfileRef!) {
  profile(ref: $ref) { extensionNames hasExtension(name: "vip") extensions { name expiresAt } }
}
"""
REF = {"identity": {"type": "CUSTOMER_ID", "value": "C-1"}}


async def define(gateway: GatewayClient, key: str | None = None, **input: Any) -> dict[str, Any]:
    result = await gateway.execute(DEFINE, {"input": {"description": "d", **input}}, key=key or ADMIN_KEY)
    payload = result.data["defineExtension"]
    assert isinstance(payload, dict)
    return payload


async def set_extension(gateway: GatewayClient, key: str | None = None, **variables: Any) -> dict[str, Any]:
    result = await gateway.execute(SET, {"ref": REF, "reason": "because", **variables}, key=key or ADMIN_KEY)
    payload = result.data["setExtension"]
    assert isinstance(payload, dict)
    return payload


async def with_profile(gateway: GatewayClient) -> None:
    await gateway.execute(
        "mutation($ref: ProfileRef!) { upsertProfile(input: {ref: $ref}) { __typename } }", {"ref": REF}
    )


async def test_define_is_idempotent_for_an_identical_definition(gateway: GatewayClient) -> None:
    first = await define(gateway, name="vip", description="Very important", defaultLifetimeDays=365)
    again = await define(gateway, name="vip", description="Very important", defaultLifetimeDays=365)
    changed = await define(gateway, name="vip", description="Very important person", defaultLifetimeDays=365)
    assert [first["outcome"], again["outcome"], changed["outcome"]] == ["CREATED", "UNCHANGED", "UPDATED"]
    listed = await gateway.execute("{ extensionDefinitions { name description } }")
    assert listed.data["extensionDefinitions"] == [{"name": "vip", "description": "Very important person"}]


async def test_bad_definitions_name_the_field(gateway: GatewayClient) -> None:
    assert (await define(gateway, name="No Reward"))["field"] == "input.name"
    assert (await define(gateway, name="ok", defaultLifetimeDays=0))["field"] == "input.defaultLifetimeDays"
    assert (await define(gateway, name="ok", description="  "))["field"] == "input.description"


async def test_set_carries_provenance_and_is_idempotent(gateway: GatewayClient, clock: FrozenClock) -> None:
    await define(gateway, name="employee")
    await with_profile(gateway)
    partner = await gateway.create_key("ADMIN", "backoffice-anna")
    first = await set_extension(gateway, key=partner, name="employee", reason="staff discount")
    assert first["changed"] is True
    [grant] = first["profile"]["extensions"]
    assert grant["by"] == "backoffice-anna"
    assert grant["reason"] == "staff discount"
    assert grant["source"] == "manual"
    assert grant["expiresAt"] is None
    clock.advance(minutes=5)
    again = await set_extension(gateway, name="employee", reason="staff discount")
    assert again["changed"] is False
    assert again["profile"]["extensions"] == [grant]


async def test_unknown_extension_is_a_typed_error(gateway: GatewayClient) -> None:
    await with_profile(gateway)
    payload = await set_extension(gateway, name="gold-member")
    assert payload["__typename"] == "UnknownExtensionError"
    assert payload["name"] == "gold-member"


async def test_an_expired_extension_is_absent_from_every_answer(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    await define(gateway, name="vip")
    await define(gateway, name="employee")
    await with_profile(gateway)
    expires = clock.now.replace(hour=12).isoformat()
    await set_extension(gateway, name="vip", expiresAt=expires)
    await set_extension(gateway, name="employee")
    before = (await gateway.execute(READ, {"ref": REF})).data["profile"]
    assert before["extensionNames"] == ["employee", "vip"]
    assert before["hasExtension"] is True
    clock.advance(hours=2)  # 12:00 exactly: the expiry has been reached
    after = (await gateway.execute(READ, {"ref": REF})).data["profile"]
    assert after == {
        "extensionNames": ["employee"],
        "hasExtension": False,
        "extensions": [{"name": "employee", "expiresAt": None}],
    }


async def test_default_lifetime_applies_when_no_expiry_is_given(
    gateway: GatewayClient, clock: FrozenClock
) -> None:
    await define(gateway, name="fraud-review", defaultLifetimeDays=30)
    await with_profile(gateway)
    payload = await set_extension(gateway, name="fraud-review")
    assert payload["profile"]["extensions"][0]["expiresAt"].startswith("2026-12-20T10:00:00")
    clock.advance(days=30)
    after = (await gateway.execute(READ, {"ref": REF})).data["profile"]
    assert after["extensionNames"] == []


async def test_expiry_in_the_past_or_without_zone_is_refused(gateway: GatewayClient) -> None:
    await define(gateway, name="vip")
    await with_profile(gateway)
    past = await set_extension(gateway, name="vip", expiresAt="2020-01-01T00:00:00Z")
    naive = await set_extension(gateway, name="vip", expiresAt="2030-01-01T00:00:00")
    assert (past["__typename"], past["field"]) == ("InvalidInputError", "expiresAt")
    assert (naive["__typename"], naive["field"]) == ("InvalidInputError", "expiresAt")


async def test_remove_is_logged_and_idempotent(gateway: GatewayClient) -> None:
    await define(gateway, name="vip")
    await with_profile(gateway)
    await set_extension(gateway, name="vip", reason="top customer")
    variables = {"ref": REF, "name": "vip", "reason": "left the programme"}
    removed = (await gateway.execute(REMOVE, variables)).data["removeExtension"]
    assert removed["changed"] is True
    assert removed["profile"]["extensionNames"] == []
    assert removed["profile"]["extensionLog"] == [
        {"action": "set", "name": "vip", "reason": "top customer", "by": "admin-key"},
        {"action": "remove", "name": "vip", "reason": "left the programme", "by": "admin-key"},
    ]
    again = (await gateway.execute(REMOVE, variables)).data["removeExtension"]
    assert again["changed"] is False


async def test_partners_set_only_partner_settable_extensions(gateway: GatewayClient) -> None:
    await define(gateway, name="influencer", partnerSettable=True)
    await define(gateway, name="employee")
    await with_profile(gateway)
    partner = await gateway.create_key("PARTNER", "creator-network")
    allowed = await set_extension(gateway, key=partner, name="influencer")
    refused = await set_extension(gateway, key=partner, name="employee")
    assert allowed["__typename"] == "ExtensionChanged"
    assert refused["__typename"] == "NotPermittedError"


async def test_setting_on_an_unknown_profile_is_not_found(gateway: GatewayClient) -> None:
    await define(gateway, name="vip")
    payload = await set_extension(gateway, name="vip")
    assert payload["__typename"] == "ProfileNotFoundError"

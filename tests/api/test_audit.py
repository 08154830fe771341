"""The audit log: admin and partner mutations are recorded (who, what, when, which profile,
outcome) without secrets or personal values; storefront calls and reads are not; filters and
pagination; the page-size cap."""

from typing import Any

from tests.gateway import FrozenClock, GatewayClient

ANN = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}
AUDIT = """
query Audit($filter: AuditFilterInput, $first: Int! = 50, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    entries { cursor at action arguments profileId outcome actor { name keyId role } }
    nextCursor
  }
}
"""
UPSERT = """
mutation Upsert($input: UpsertProfileInput!) {
  upsertProfile(input: $input) { ... on ProfileUpserted { profile { id } } }
}
"""
DEFINE = """
mutation { defineExtension(input: {name: "vip", description: "VIP", partnerSettable: true}) { __typename } }
"""
SET_VIP = """
mutation Set($ref: ProfileRef!) { setExtension(ref: $ref, name: "vip", reason: "crm") { __typename } }
"""
CONSENT = """
mutation Consent($ref: ProfileRef!) {
  setConsent(ref: $ref, consent: {purpose: "ads", granted: true, source: "banner"}) { __typename }
}
"""
PROFILE = "query($ref: ProfileRef!) { profile(ref: $ref) { id } }"


async def audit(gateway: GatewayClient, **variables: Any) -> dict[str, Any]:
    page = (await gateway.execute(AUDIT, variables)).data["auditLog"]
    assert isinstance(page, dict)
    return page


async def test_admin_and_partner_mutations_are_recorded_storefront_calls_and_reads_are_not(
    gateway: GatewayClient,
) -> None:
    partner = await gateway.create_key("PARTNER", "crm-sync")
    storefront = await gateway.create_key("STOREFRONT", "shop")
    upserted = await gateway.execute(UPSERT, {"input": {"ref": ANN, "traits": {"firstName": "Ann"}}})
    profile_id = upserted.data["upsertProfile"]["profile"]["id"]
    await gateway.execute(DEFINE)
    await gateway.execute(SET_VIP, {"ref": ANN}, key=partner)
    await gateway.execute(DEFINE, key=partner)  # refused: only admins define
    await gateway.execute(CONSENT, {"ref": ANN}, key=storefront)
    await gateway.execute(PROFILE, {"ref": ANN}, key=storefront)
    await gateway.execute(PROFILE, {"ref": ANN})

    entries = (await audit(gateway))["entries"]

    assert [(e["action"], e["actor"]["role"], e["outcome"]) for e in entries] == [
        ("defineExtension", "PARTNER", "FORBIDDEN"),
        ("setExtension", "PARTNER", "ExtensionChanged"),
        ("defineExtension", "ADMIN", "ExtensionDefined"),
        ("upsertProfile", "ADMIN", "ProfileUpserted"),
        ("createApiKey", "ADMIN", "ApiKeyCreated"),
        ("createApiKey", "ADMIN", "ApiKeyCreated"),
    ]
    set_vip, upsert = entries[1], entries[3]
    assert (set_vip["profileId"], set_vip["actor"]["name"]) == (profile_id, "crm-sync")
    assert set_vip["actor"]["keyId"] is not None
    assert set_vip["arguments"]["ref"] == {"identity": {"type": "EMAIL", "value": "[personal]"}}
    assert upsert["profileId"] == profile_id
    assert upsert["arguments"]["input"]["traits"] == "[personal]"
    assert "ann@example.com" not in repr(entries)
    assert "Ann" not in repr(entries)


async def test_a_created_key_is_recorded_without_its_token(gateway: GatewayClient) -> None:
    token = await gateway.create_key("INGEST", "warehouse")

    [entry] = (await audit(gateway))["entries"]

    assert (entry["action"], entry["outcome"]) == ("createApiKey", "ApiKeyCreated")
    assert (entry["arguments"]["name"], entry["arguments"]["role"]) == ("warehouse", "INGEST")
    assert token not in repr(entry)
    assert token.split("_")[-1] not in repr(entry)


async def test_filters_narrow_the_log(gateway: GatewayClient, clock: FrozenClock) -> None:
    partner = await gateway.create_key("PARTNER", "crm-sync")
    upserted = await gateway.execute(UPSERT, {"input": {"ref": ANN}})
    profile_id = upserted.data["upsertProfile"]["profile"]["id"]
    clock.advance(hours=1)
    since = clock.now.isoformat()
    await gateway.execute(DEFINE)
    await gateway.execute(SET_VIP, {"ref": ANN}, key=partner)
    await gateway.execute(SET_VIP, {"ref": {"id": "nobody"}}, key=partner)

    def actions(page: dict[str, Any]) -> list[str]:
        return [entry["action"] for entry in page["entries"]]

    assert actions(await audit(gateway, filter={"actor": "crm-sync"})) == ["setExtension"] * 2
    assert actions(await audit(gateway, filter={"profileId": profile_id})) == [
        "setExtension",
        "upsertProfile",
    ]
    assert actions(await audit(gateway, filter={"from": since})) == [
        "setExtension",
        "setExtension",
        "defineExtension",
    ]
    assert actions(await audit(gateway, filter={"to": since})) == ["upsertProfile", "createApiKey"]
    assert actions(await audit(gateway, filter={"outcome": "ProfileNotFoundError"})) == ["setExtension"]
    both = await audit(gateway, filter={"action": "setExtension", "outcome": "ExtensionChanged"})
    assert [entry["profileId"] for entry in both["entries"]] == [profile_id]


async def test_pages_walk_the_log_newest_first_with_an_opaque_cursor(gateway: GatewayClient) -> None:
    for index in range(5):
        await gateway.create_key("INGEST", f"key-{index}")

    pages, after = [], None
    while True:
        page = await audit(gateway, first=2, after=after)
        pages.append([entry["arguments"]["name"] for entry in page["entries"]])
        after = page["nextCursor"]
        if after is None:
            break

    assert pages == [["key-4", "key-3"], ["key-2", "key-1"], ["key-0"]]


async def test_the_page_size_is_capped_and_a_foreign_cursor_refused(gateway: GatewayClient) -> None:
    too_many = await gateway.execute(AUDIT, {"first": 201})
    foreign = await gateway.execute(AUDIT, {"after": "bm90LWEtY3Vyc29y"})
    partner = await gateway.create_key("PARTNER")
    as_partner = await gateway.execute(AUDIT, {}, key=partner)

    assert too_many.error_codes == ["BAD_USER_INPUT"]
    assert "200" in too_many.body["errors"][0]["message"]
    assert foreign.error_codes == ["BAD_USER_INPUT"]
    assert as_partner.error_codes == ["FORBIDDEN"]

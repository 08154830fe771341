"""Segments over GraphQL and HTTP: validation on save, membership, members, rule extensions, export."""

import csv
import hashlib
import io
from pathlib import Path
from typing import Any

import orjson

from profilegate.domain.segment_chains import MAX_SEGMENT_CHAIN
from profilegate.service.seed import SeedRules, seed
from profilegate.service.segments import SegmentCatalogue, refresh_rule_extensions
from profilegate.settings import Settings
from profilegate.storage.store import Repositories
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient

FIXTURES = Path(__file__).parents[2] / "fixtures"
SAVE = """
mutation($input: SaveSegmentInput!) {
  saveSegment(input: $input) {
    __typename
    ... on SegmentSaved { created segment { key version rule maintainsExtension } }
    ... on InvalidRuleError { field line column message }
    ... on InvalidInputError { field message }
    ... on SegmentChainError { field chain message }
    ... on UnknownExtensionError { name }
  }
}
"""
MEMBERSHIP = """
query($ref: ProfileRef!, $key: String!) {
  profile(ref: $ref) { segments inSegment(key: $key) extensionNames }
}
"""


def email(value: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": value}}


async def save(gateway: GatewayClient, key: str, rule: str, **extra: Any) -> dict[str, Any]:
    result = await gateway.execute(SAVE, {"input": {"key": key, "name": key.title(), "rule": rule, **extra}})
    return dict(result.data["saveSegment"])


async def track(gateway: GatewayClient, *events: dict[str, Any]) -> None:
    response = await gateway.http.post(
        "/v1/track", json={"events": list(events)}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.json()["accepted"] == len(events), response.json()


def order(event_id: str, who: str, total: str, at: str) -> dict[str, Any]:
    properties = {
        "orderId": f"o-{event_id}",
        "total": total,
        "currency": "EUR",
        "items": [{"sku": "A1", "category": "shoes", "price": total, "quantity": 1}],
    }
    return shop_event(event_id, "order_completed", who, at, properties)


def returned(event_id: str, who: str, order_event: str, amount: str, at: str) -> dict[str, Any]:
    return shop_event(event_id, "order_returned", who, at, {"orderId": f"o-{order_event}", "amount": amount})


def shop_event(event_id: str, kind: str, who: str, at: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "at": at,
        "channel": "web",
        "identity": {"type": "EMAIL", "value": who},
        "properties": properties,
    }


async def test_a_rule_with_a_typo_is_refused_with_line_and_column_and_nothing_is_stored(
    gateway: GatewayClient,
) -> None:
    refused = await save(gateway, "big-spenders", "orders(last 365d) >= 3\nand net_spnd(last 90d) > 500.00")
    assert refused["__typename"] == "InvalidRuleError"
    assert (refused["field"], refused["line"], refused["column"]) == ("input.rule", 2, 5)
    assert "net_spnd" in refused["message"]
    listed = await gateway.execute('{ segments { key } segment(key: "big-spenders") { key } }')
    assert listed.data == {"segments": [], "segment": None}


async def test_unknown_extensions_segments_and_cycles_are_refused(gateway: GatewayClient) -> None:
    unknown = await save(gateway, "a", 'has_extension("platinum-club")')
    assert (unknown["__typename"], unknown["line"], unknown["column"]) == ("InvalidRuleError", 1, 15)
    missing = await save(gateway, "a", 'orders >= 1 or in_segment("nowhere")')
    assert (missing["__typename"], missing["column"]) == ("InvalidRuleError", 27)
    assert (await save(gateway, "a", "orders >= 1"))["__typename"] == "SegmentSaved"
    assert (await save(gateway, "b", 'in_segment("a")'))["__typename"] == "SegmentSaved"
    cycle = await save(gateway, "a", 'in_segment("b")')
    assert cycle["__typename"] == "InvalidRuleError"
    assert "cycle" in cycle["message"]
    kept = await gateway.execute('{ segment(key: "a") { rule version } }')
    assert kept.data["segment"] == {"rule": "orders >= 1", "version": 1}


async def test_a_chain_of_in_segment_past_the_limit_is_refused_naming_it(gateway: GatewayClient) -> None:
    assert (await save(gateway, "s0", "orders >= 1"))["__typename"] == "SegmentSaved"
    for index in range(1, MAX_SEGMENT_CHAIN):
        saved = await save(gateway, f"s{index}", f'in_segment("s{index - 1}")')
        assert saved["__typename"] == "SegmentSaved"
    refused = await save(gateway, "vip", f'in_segment("s{MAX_SEGMENT_CHAIN - 1}") and orders >= 2')
    chain = ["vip", *(f"s{index}" for index in reversed(range(MAX_SEGMENT_CHAIN)))]
    assert refused == {
        "__typename": "SegmentChainError",
        "field": "input.rule",
        "chain": chain,
        "message": f"input.rule: a chain of in_segment holds at most {MAX_SEGMENT_CHAIN} segments, "
        f"this one {MAX_SEGMENT_CHAIN + 1}: {' -> '.join(chain)}",
    }
    listed = await gateway.execute('{ segment(key: "vip") { key } }')
    assert listed.data == {"segment": None}


async def test_membership_members_and_explanations(gateway: GatewayClient) -> None:
    await track(
        gateway,
        order("e1", "ann@example.com", "600.00", "2026-10-01T10:00:00Z"),
        order("e2", "ann@example.com", "50.00", "2026-11-01T10:00:00Z"),
        order("e3", "bob@example.com", "20.00", "2026-11-01T10:00:00Z"),
        order("e4", "cem@example.com", "900.00", "2025-01-01T10:00:00Z"),
    )
    saved = await save(gateway, "big", "net_spend(last 365d) > 500.00 and orders(last 365d) >= 2")
    assert saved["__typename"] == "SegmentSaved"

    ann = await gateway.execute(MEMBERSHIP, {"ref": email("ann@example.com"), "key": "big"})
    assert ann.data["profile"]["segments"] == ["big"]
    assert ann.data["profile"]["inSegment"] is True
    bob = await gateway.execute(MEMBERSHIP, {"ref": email("bob@example.com"), "key": "big"})
    assert bob.data["profile"]["inSegment"] is False

    explained = await gateway.execute(
        'query($ref: ProfileRef!) { profile(ref: $ref) { explainSegment(key: "big") {'
        " clause held parts { clause held seen } } } }",
        {"ref": email("bob@example.com")},
    )
    explanation = explained.data["profile"]["explainSegment"]
    assert explanation["held"] is False
    assert [(p["held"], p["seen"]) for p in explanation["parts"]] == [(False, "20.00"), (False, "1")]

    page = await gateway.execute(
        '{ segment(key: "big") { size members(first: 10) { profiles { id } nextCursor } } }'
    )
    assert page.data["segment"]["size"] == 1
    assert len(page.data["segment"]["members"]["profiles"]) == 1
    assert page.data["segment"]["members"]["nextCursor"] is None


async def test_members_come_in_pages_that_cover_every_member_once(gateway: GatewayClient) -> None:
    await track(
        gateway, *(order(f"e{n}", f"c{n}@example.com", "10.00", "2026-11-01T10:00:00Z") for n in range(7))
    )
    await save(gateway, "buyers", "orders >= 1")
    seen: list[str] = []
    cursor = None
    while True:
        result = await gateway.execute(
            'query($after: String) { segment(key: "buyers") { members(first: 3, after: $after) {'
            " profiles { id } nextCursor } } }",
            {"after": cursor},
        )
        members = result.data["segment"]["members"]
        seen.extend(p["id"] for p in members["profiles"])
        cursor = members["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 7 == len(set(seen))
    assert seen == sorted(seen)


async def test_frequent_returner_comes_with_returns_and_goes_when_they_age_out(
    gateway: GatewayClient, clock: FrozenClock, repos: Repositories
) -> None:
    await gateway.execute(
        'mutation { defineExtension(input: {name: "frequent-returner", description: "Returns a lot"})'
        " { __typename } }"
    )
    rule = "returns(last 365d) >= 3 and return_rate > 0.3"
    assert (await save(gateway, "frequent-returner", rule, maintainsExtension="frequent-returner"))[
        "__typename"
    ] == "SegmentSaved"
    who = "rita@example.com"
    await track(gateway, *(order(f"o{n}", who, "40.00", "2026-03-01T10:00:00Z") for n in range(4)))
    await track(gateway, returned("r0", who, "o0", "40.00", "2026-03-10T10:00:00Z"))
    await track(gateway, returned("r1", who, "o1", "40.00", "2026-03-10T10:00:00Z"))
    before = await gateway.execute(MEMBERSHIP, {"ref": email(who), "key": "frequent-returner"})
    assert "frequent-returner" not in before.data["profile"]["extensionNames"]

    await track(gateway, returned("r2", who, "o2", "40.00", "2026-03-12T10:00:00Z"))
    after = await gateway.execute(
        "query($ref: ProfileRef!) { profile(ref: $ref) { extensions { name source by } } }",
        {"ref": email(who)},
    )
    assert {
        "name": "frequent-returner",
        "source": "rule:frequent-returner",
        "by": "rule:frequent-returner",
    } in (after.data["profile"]["extensions"])

    clock.advance(days=365)  # the returns of March leave the 365-day window
    await refresh_rule_extensions(repos, SegmentCatalogue(repos, cache_seconds=0), clock.now)
    gone = await gateway.execute(MEMBERSHIP, {"ref": email(who), "key": "frequent-returner"})
    assert gone.data["profile"]["inSegment"] is False
    assert "frequent-returner" not in gone.data["profile"]["extensionNames"]


async def test_on_the_seeded_data_size_equals_the_profiles_in_each_segment(
    gateway: GatewayClient, repos: Repositories, clock: FrozenClock
) -> None:
    settings = Settings(mongodb_uri="mongodb://unused")
    rules = SeedRules(settings.tracking_rules, settings.tier_rules, settings.segment_rules)
    await seed(repos, FIXTURES, rules, clock.now)
    segments = await gateway.execute("{ segments { key size } }")
    sizes = {s["key"]: s["size"] for s in segments.data["segments"]}
    assert len(sizes) == 7
    members: dict[str, int] = dict.fromkeys(sizes, 0)
    profiles = [p async for p in repos.profiles.merge_pointers() if p.merged_into is None]
    for pointers in profiles:
        result = await gateway.execute(
            "query($id: ID!) { profile(ref: {id: $id}) { segments } }", {"id": pointers.id}
        )
        for key in result.data["profile"]["segments"]:
            members[key] += 1
    assert sizes == members
    assert sum(1 for n in sizes.values() if n) >= 4, sizes


async def test_the_export_holds_exactly_the_consenting_members_with_reference_hashes(
    gateway: GatewayClient,
) -> None:
    await save(gateway, "buyers", "orders >= 1")
    for n, consented in enumerate([True, False, True]):
        who = f"Buyer{n}@Example.com "
        await track(gateway, order(f"e{n}", who, "10.00", "2026-11-01T10:00:00Z"))
        await gateway.execute(
            "mutation($ref: ProfileRef!, $granted: Boolean!) { setConsent(ref: $ref,"
            ' consent: {purpose: "ads", granted: $granted, source: "test"}) { __typename } }',
            {"ref": email(who), "granted": consented},
        )
    await gateway.execute(
        'mutation { upsertProfile(input: {ref: {identity: {type: EMAIL, value: "buyer0@example.com"}},'
        ' identities: [{type: PHONE, value: "+49 30 1234567"}]}) { __typename } }'
    )
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    plain = await gateway.http.get("/v1/segments/buyers/audience?purpose=ads", headers=headers)
    assert plain.status_code == 200
    rows = list(csv.DictReader(io.StringIO(plain.text)))
    assert sorted(r["email"] for r in rows) == ["buyer0@example.com", "buyer2@example.com"]

    hashed = await gateway.http.get(
        "/v1/segments/buyers/audience?purpose=ads&format=ndjson&hash=true", headers=headers
    )
    lines = [orjson.loads(line) for line in hashed.content.splitlines()]
    by_email = {line["email"]: line for line in lines}
    reference = hashlib.sha256(b"buyer0@example.com").hexdigest()
    assert by_email[reference]["phone"] == hashlib.sha256(b"+49301234567").hexdigest()
    assert hashlib.sha256(b"buyer2@example.com").hexdigest() in by_email
    assert len(lines) == 2

    refused = await gateway.http.get("/v1/segments/buyers/audience", headers=headers)
    assert refused.status_code == 400
    assert (
        await gateway.http.get("/v1/segments/nope/audience?purpose=ads", headers=headers)
    ).status_code == 404
    storefront = await gateway.create_key("STOREFRONT")
    forbidden = await gateway.http.get(
        "/v1/segments/buyers/audience?purpose=ads", headers={"authorization": f"Bearer {storefront}"}
    )
    assert forbidden.status_code == 403

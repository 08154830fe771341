"""The change feed over GraphQL WebSockets: resume by cursor, transitions, isolation, scopes."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.feed_client import LEGACY_WS, FeedSocket, StalledSocket, serving
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient

TRACK = """
mutation Track($events: [EventInput!]!) { track(events: $events) { accepted rejected results { reason } } }
"""
UPSERT = """
mutation($input: UpsertProfileInput!) { upsertProfile(input: $input) { __typename } }
"""
SET_CONSENT = """
mutation($ref: ProfileRef!, $consent: ConsentInput!) {
  setConsent(ref: $ref, consent: $consent) { __typename }
}
"""
CREATE_KEY = """
mutation($name: String!, $kinds: [ChangeKind!], $fields: [String!]) {
  createApiKey(name: $name, role: PARTNER, changeKinds: $kinds, fields: $fields) {
    __typename ... on ApiKeyCreated { token } ... on InvalidInputError { field message }
  }
}
"""
POLICY = json.loads((Path(__file__).parents[2] / "fixtures" / "tier_policy.json").read_text())


def ref(who: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": who}}


def view(event_id: str, who: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-20T09:00:00Z",
        "channel": "WEB",
        "ref": ref(who),
        "payload": {"productView": {"sku": "A1", "category": "coats"}},
    }


def order(event_id: str, who: str, total: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-10-01T09:00:00Z",
        "channel": "WEB",
        "ref": ref(who),
        "payload": {
            "orderCompleted": {
                "orderId": f"o-{event_id}",
                "total": total,
                "currency": "EUR",
                "items": [{"sku": "A1", "category": "coats", "price": total, "quantity": 1}],
            }
        },
    }


def refund(event_id: str, who: str, order_event: str, amount: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-19T09:00:00Z",
        "channel": "WEB",
        "ref": ref(who),
        "payload": {"orderReturned": {"orderId": f"o-{order_event}", "amount": amount, "currency": "EUR"}},
    }


async def track(gateway: GatewayClient, *events: dict[str, Any]) -> None:
    result = (await gateway.execute(TRACK, {"events": list(events)})).data["track"]
    assert result["accepted"] == len(events), result


async def share(gateway: GatewayClient, who: str, granted: bool = True) -> None:
    consent = {"purpose": "partner_sharing", "granted": granted, "source": "signup"}
    result = await gateway.execute(SET_CONSENT, {"ref": ref(who), "consent": consent})
    assert result.data["setConsent"]["__typename"] == "ConsentSet"


async def partner_key(gateway: GatewayClient, name: str = "partner", **scope: Any) -> str:
    result = await gateway.execute(CREATE_KEY, {"name": name, **scope})
    token = result.data["createApiKey"]["token"]
    assert isinstance(token, str)
    return token


@pytest.fixture
async def live(settings: Settings, clock: FrozenClock) -> AsyncIterator[tuple[str, GatewayClient]]:
    async with serving(create_app(settings, clock=clock)) as served:
        yield served


async def test_a_subscriber_that_missed_fifty_changes_gets_exactly_those_then_live_ones(
    live: tuple[str, GatewayClient],
) -> None:
    base, gateway = live
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("v0", "ann@example.com"))
        last = await feed.change()
    assert last["payload"]["eventId"] == "v0"
    await track(gateway, *(view(f"v{n}", "ann@example.com") for n in range(1, 51)))
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"after": last["cursor"], "kinds": ["EVENT_TRACKED"]})
        missed = await feed.changes(50)
        assert [c["payload"]["eventId"] for c in missed] == [f"v{n}" for n in range(1, 51)]
        assert len({c["cursor"] for c in missed}) == 50
        assert await feed.nothing_within(0.5)
        await track(gateway, view("v51", "ann@example.com"))
        assert (await feed.change())["payload"]["eventId"] == "v51"


async def test_without_after_the_stream_starts_at_the_present(live: tuple[str, GatewayClient]) -> None:
    base, gateway = live
    await track(gateway, view("old", "ann@example.com"))
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("new", "ann@example.com"))
        assert (await feed.change())["payload"]["eventId"] == "new"


async def test_an_event_that_moves_a_customer_tells_segment_and_tier_transitions(
    live: tuple[str, GatewayClient],
) -> None:
    base, gateway = live
    published = await gateway.execute(
        "mutation($p: TierPolicyInput!) { publishTierPolicy(policy: $p, activate: true) { __typename } }",
        {"p": {**POLICY, "overrides": []}},
    )
    assert published.data["publishTierPolicy"]["__typename"] == "TierPolicy"
    saved = await gateway.execute(
        "mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { __typename } }",
        {"i": {"key": "big-spenders", "name": "Big spenders", "rule": "net_spend(last 365d) >= 250.00"}},
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    await track(gateway, view("first", "ann@example.com"), view("other", "bob@example.com"))
    kinds = ["SEGMENT_ENTERED", "SEGMENT_LEFT", "TIER_CHANGED"]
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"kinds": kinds})
        await track(gateway, order("big", "ann@example.com", "300.00"))
        entered, upgraded = await feed.changes(2)
        await track(gateway, refund("back", "ann@example.com", "big", "300.00"))
        left, downgraded = await feed.changes(2)
        assert await feed.nothing_within(0.3)
    assert {entered["profileId"], upgraded["profileId"], left["profileId"]} == {downgraded["profileId"]}
    assert (entered["kind"], entered["payload"]) == ("SEGMENT_ENTERED", {"segment": "big-spenders"})
    assert upgraded["kind"] == "TIER_CHANGED"
    assert (upgraded["payload"]["from"], upgraded["payload"]["to"]) == ("MEMBER", "SILVER")
    assert (left["kind"], left["payload"]) == ("SEGMENT_LEFT", {"segment": "big-spenders"})
    assert (downgraded["payload"]["from"], downgraded["payload"]["to"]) == ("SILVER", "MEMBER")


async def test_a_segment_subscription_gets_its_members_changes_and_its_entries_and_exits(
    live: tuple[str, GatewayClient],
) -> None:
    base, gateway = live
    saved = await gateway.execute(
        "mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { __typename } }",
        {"i": {"key": "buyers", "name": "Buyers", "rule": "orders >= 1"}},
    )
    assert saved.data["saveSegment"]["__typename"] == "SegmentSaved"
    await track(gateway, view("b0", "bob@example.com"))
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"segment": "buyers"})
        await track(gateway, view("b1", "bob@example.com"))  # bob is not a buyer: not told
        await track(gateway, order("a1", "ann@example.com", "20.00"))
        told = await feed.changes(2)  # ann's profile is created outside the segment: not told
        assert await feed.nothing_within(0.3)
    assert [(c["kind"], c["payload"].get("eventId")) for c in told] == [
        ("EVENT_TRACKED", "a1"),
        ("SEGMENT_ENTERED", None),
    ]
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"segment": "nobody"})
        message = await feed.receive()
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert [error["extensions"]["code"] for error in errors] == ["NOT_FOUND"], message


async def test_a_partner_never_sees_a_profile_without_partner_sharing_consent(
    live: tuple[str, GatewayClient],
) -> None:
    base, gateway = live
    await share(gateway, "ann@example.com")
    await share(gateway, "bob@example.com", granted=False)
    partner = await partner_key(gateway)
    async with FeedSocket.open(base, key=partner) as feed, FeedSocket.open(base) as admin:
        await feed.subscribe()
        await admin.subscribe({"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("b1", "bob@example.com"), view("a1", "ann@example.com"))
        await track(gateway, view("c1", "cid@example.com"))
        seen = await feed.change()
        assert await feed.nothing_within(0.5)
        assert {c["payload"]["eventId"] for c in await admin.changes(3)} == {"a1", "b1", "c1"}
    assert seen["payload"]["eventId"] == "a1"
    await share(gateway, "ann@example.com", granted=False)
    async with FeedSocket.open(base, key=partner) as feed:
        await feed.subscribe({"after": seen["cursor"]})
        assert await feed.nothing_within(0.5)


async def test_a_partner_sees_only_the_kinds_and_personal_fields_its_key_grants(
    live: tuple[str, GatewayClient],
) -> None:
    base, gateway = live
    await share(gateway, "ann@example.com")
    narrow = await partner_key(gateway, "narrow", kinds=["PROFILE_UPDATED"], fields=["traits.country"])
    bare = await partner_key(gateway, "bare")
    async with FeedSocket.open(base, key=narrow) as scoped, FeedSocket.open(base, key=bare) as plain:
        await scoped.subscribe()
        await plain.subscribe({"kinds": ["PROFILE_UPDATED"]})
        await track(gateway, view("v1", "ann@example.com"))
        traits = {"country": "DE", "shoeSize": 39}
        result = await gateway.execute(UPSERT, {"input": {"ref": ref("ann@example.com"), "traits": traits}})
        assert result.data["upsertProfile"]["__typename"] == "ProfileUpserted"
        updated = await scoped.change()
        unscoped = await plain.change()
    assert updated["kind"] == "PROFILE_UPDATED"
    assert updated["payload"]["traits"] == {"country": "DE"}
    assert "identities" not in updated["payload"]
    assert "traits" not in unscoped["payload"]
    assert "identities" not in unscoped["payload"]
    assert unscoped["payload"]["changed"] == ["traits"]


async def test_a_bad_scope_field_is_refused_naming_it(gateway: GatewayClient) -> None:
    result = await gateway.execute(CREATE_KEY, {"name": "p", "fields": ["traits", "password"]})
    assert result.data["createApiKey"] == {
        "__typename": "InvalidInputError",
        "field": "fields[1]",
        "message": "fields[1]: must be identities, traits, traits.<key> or shopMetrics",
    }


async def test_storefront_and_ingest_keys_may_not_follow_the_feed(live: tuple[str, GatewayClient]) -> None:
    base, gateway = live
    storefront = await gateway.create_key("STOREFRONT")
    async with FeedSocket.open(base, key=storefront) as feed:
        await feed.subscribe()
        message = await feed.receive()
    assert message["type"] == "error" or message["payload"].get("errors"), message
    assert "partner" in json.dumps(message)


async def test_a_cursor_older_than_the_retention_is_refused_with_a_typed_error(
    live: tuple[str, GatewayClient], clock: FrozenClock
) -> None:
    base, gateway = live
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("v1", "ann@example.com"))
        cursor = (await feed.change())["cursor"]
    clock.advance(days=8)
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"after": cursor})
        message = await feed.receive()
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert [error["extensions"]["code"] for error in errors] == ["CURSOR_EXPIRED"], message


async def test_a_browser_sends_its_key_in_the_connection_params(live: tuple[str, GatewayClient]) -> None:
    base, gateway = live
    async with FeedSocket.open(base, key=None, params={"authorization": f"Bearer {ADMIN_KEY}"}) as feed:
        await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("v1", "ann@example.com"))
        assert (await feed.change())["payload"]["eventId"] == "v1"
    async with FeedSocket.open(base, key=None, acknowledge=False) as refused:
        await refused.send({"type": "connection_init", "payload": {"authorization": "Bearer wrong"}})
        closed = await refused.closed()
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4403


async def test_the_legacy_graphql_ws_protocol_delivers_too(live: tuple[str, GatewayClient]) -> None:
    base, gateway = live
    async with FeedSocket.open(base, protocol=LEGACY_WS) as feed:
        await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
        await track(gateway, view("v1", "ann@example.com"))
        assert (await feed.change())["payload"]["eventId"] == "v1"


async def test_the_gql_client_follows_the_feed(live: tuple[str, GatewayClient]) -> None:
    base, gateway = live
    transport = WebsocketsTransport(
        url=base.replace("http", "ws", 1) + "/graphql",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    document = gql("subscription { changes(kinds: [EVENT_TRACKED]) { cursor kind payload } }")
    async with Client(transport=transport) as session:
        stream = session.subscribe(document)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.3)
        await track(gateway, view("v1", "ann@example.com"))
        change = await asyncio.wait_for(first, 10)
        await stream.aclose()
    assert change["changes"]["payload"]["eventId"] == "v1"


@pytest.fixture
async def small_queues(
    store_uri: str, settings: Settings, clock: FrozenClock
) -> AsyncIterator[tuple[str, GatewayClient]]:
    tight = settings.model_copy(update={"feed_queue_size": 4})
    async with serving(create_app(tight, clock=clock), send_buffer=4096) as served:
        yield served


async def test_a_stalled_subscriber_is_closed_with_a_reason_while_another_keeps_receiving(
    small_queues: tuple[str, GatewayClient],
) -> None:
    base, gateway = small_queues
    updates = 60
    await share(gateway, "ann@example.com")  # the profile exists: every upsert below updates it
    kinds = {"kinds": ["PROFILE_UPDATED"]}
    async with StalledSocket.open(base, kinds) as stalled, FeedSocket.open(base) as reader:
        await reader.subscribe(kinds)
        received = asyncio.ensure_future(reader.changes(updates, within=30))
        for n in range(updates):
            traits = {"n": n, "notes": f"{n:06d}" * 1_000}  # 6 KB a change
            result = await gateway.execute(
                UPSERT, {"input": {"ref": ref("ann@example.com"), "traits": traits}}
            )
            assert result.data["upsertProfile"]["__typename"] == "ProfileUpserted"
        delivered = await received
        closed = await stalled.close_frame()
    assert [change["payload"]["traits"]["n"] for change in delivered] == list(range(updates))
    assert closed.code == 4413
    assert "fell behind" in closed.reason


IDENTIFY = """
mutation($anon: String, $identities: [IdentityInput!]!) {
  identify(anonymousId: $anon, identities: $identities) {
    __typename ... on Identified { mergedProfileIds profile { id } }
  }
}
"""


async def test_a_merge_and_an_extension_are_told_on_the_surviving_profile(
    live: tuple[str, GatewayClient], clock: FrozenClock
) -> None:
    base, gateway = live
    await share(gateway, "ann@example.com")
    clock.advance(seconds=1)
    anonymous = {"identity": {"type": "ANONYMOUS_ID", "value": "anon-1"}}
    await track(gateway, {**view("a1", "x@example.com"), "ref": anonymous})
    defined = await gateway.execute(
        'mutation { defineExtension(input: {name: "vip", description: "d"}) { __typename } }'
    )
    assert defined.data["defineExtension"]["__typename"] == "ExtensionDefined"
    kinds = ["PROFILES_MERGED", "EXTENSION_SET"]
    async with FeedSocket.open(base) as feed:
        await feed.subscribe({"kinds": kinds})
        email = {"type": "EMAIL", "value": "ann@example.com"}
        done = (await gateway.execute(IDENTIFY, {"anon": "anon-1", "identities": [email]})).data["identify"]
        merged = await feed.change()
        result = await gateway.execute(
            'mutation($r: ProfileRef!) { setExtension(ref: $r, name: "vip", reason: "top") { __typename } }',
            {"r": ref("ann@example.com")},
        )
        assert result.data["setExtension"]["__typename"] == "ExtensionChanged"
        extension = await feed.change()
    winner = done["profile"]["id"]
    assert (merged["kind"], merged["profileId"]) == ("PROFILES_MERGED", winner)
    assert merged["payload"]["mergedFrom"] == done["mergedProfileIds"][0]
    assert (extension["kind"], extension["profileId"]) == ("EXTENSION_SET", winner)
    assert extension["payload"]["name"] == "vip"
    assert extension["payload"]["reason"] == "top"

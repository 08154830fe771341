"""docs/access.md: the committed table is the one the code generates, it has a row for every
root field, subscription, HTTP endpoint and ``Profile`` field, and every cell holds through the
HTTP API (and the WebSocket for subscriptions), each storefront cell without and with a proof.

What a cell expects comes from ``api.access_table``, the same tables the document is written
from; this module only knows how to call each row (``PROBES``) and what each kind of cell
means when called (the ``check`` of each probe).
"""

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import graphql
import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from profilegate.api.access_table import (
    END_MARKER,
    NEW_DOCUMENT,
    START_MARKER,
    Access,
    Column,
    Row,
    documented_tables,
    markdown,
    with_table,
)
from profilegate.api.schema import schema_sdl
from profilegate.app import create_app
from profilegate.cli import app as cli
from profilegate.domain.keys import SHOP_METRICS_GRANT
from profilegate.settings import Settings
from profilegate.storage.store import open_client
from tests.conftest import TEST_LAYOUT, TEST_LAYOUT_KIND
from tests.feed_client import TRANSPORT_WS, FeedSocket
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, StorefrontKey
from tests.shopper_proofs import mint

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "access.md"
TABLES = documented_tables()
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
AT = "2026-11-20T09:00:00Z"
SCRAPE_TOKEN = "access-table-scrape"
VISITOR = "4c7e2a91-0b3d-4f6e-9a8c-5d1e2f3a4b6c"  # a UUID v4, as a browser mints it
SHORT_VISITOR = "visitor-42"  # under the 22 characters of a storefront's anonymous id
ANN = "ann.access@example.com"  # the shopper the proofs name, linked to VISITOR
BOB = "bob.access@example.com"  # another shopper
CARL = "carl.access@example.com"  # a shopper with a profile of his own
SHOWN, HIDDEN = "vip", "watchlist"  # extensions on ANN: shown to shoppers, and not
UNION_REFUSAL = "NotPermittedError result"  # a mutation's refusal, which carries no `missing`
MISSING = ("no_proof", "proof_refused", "other_shopper", "server_only", UNION_REFUSAL)
FORGED_PROOF = mint("another-secret-of-32-bytes-or-more", "x", f"email:{ANN}", NOW)


class Target(Enum):
    VISITOR = "the key's own visitor"
    SHOPPER = "the shopper the proof names"
    OTHER = "another shopper"
    SHORT = "a too short anonymous id"
    BY_ID = "a profile id"


@dataclass(frozen=True)
class Caller:
    """The key of one column, with the proof header it sends (storefront, with proof)."""

    column: Column
    key: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def storefront(self) -> bool:
        return self.column in (Column.STOREFRONT, Column.PROVEN)

    @property
    def target(self) -> Target:
        """Whom a call that should be allowed addresses: a storefront key without a proof its
        own visitor, any other caller the known shopper."""
        return Target.VISITOR if self.column is Column.STOREFRONT else Target.SHOPPER


@dataclass(frozen=True)
class Shop:
    gateway: GatewayClient
    base: str
    keys: Mapping[Column, str]  # the server keys, shared by every test
    granted_partner: str  # a partner key granted shopMetrics
    storefront: StorefrontKey  # for rows where it runs into no refusal for want of a proof
    profile_id: str  # ANN's, who is VISITOR too

    def ref(self, target: Target) -> dict[str, Any]:
        return {
            Target.VISITOR: anonymous(VISITOR),
            Target.SHOPPER: email(ANN),
            Target.OTHER: email(BOB),
            Target.SHORT: anonymous(SHORT_VISITOR),
            Target.BY_ID: {"id": self.profile_id},
        }[target]

    async def execute(self, caller: Caller, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        result = await self.gateway.execute(document, variables, key=caller.key, headers=dict(caller.headers))
        assert result.status == 200, (caller, result.body)
        return result.body


def email(value: str) -> dict[str, Any]:
    return {"identity": {"type": "EMAIL", "value": value}}


def anonymous(value: str) -> dict[str, Any]:
    return {"identity": {"type": "ANONYMOUS_ID", "value": value}}


# ---------------------------------------------------------------- reading an answer


def errors(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(body.get("errors") or [])


def forbidden_by_role(body: Mapping[str, Any]) -> bool:
    """Refused by a permission class ("this field needs ..."), not a storefront key's
    NotPermittedError."""
    return any(
        e.get("extensions", {}).get("code") == "FORBIDDEN"
        and "type" not in e.get("extensions", {})
        and e["message"].startswith("this field needs")
        for e in errors(body)
    )


def results(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every object in the answer's data that names its type."""
    found: list[dict[str, Any]] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if "__typename" in value:
                found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body.get("data"))
    return found


def typenames(body: Mapping[str, Any]) -> set[str]:
    return {result["__typename"] for result in results(body)}


def not_permitted(body: Mapping[str, Any]) -> str | None:
    """A storefront refusal: a query's `missing` (or ""), or a mutation's NotPermittedError."""
    for error in errors(body):
        extensions = error.get("extensions", {})
        if extensions.get("type") == "NotPermittedError":
            assert extensions.get("code") == "FORBIDDEN", error
            return str(extensions.get("missing", ""))
    return UNION_REFUSAL if "NotPermittedError" in typenames(body) else None


def invalid_field(body: Mapping[str, Any]) -> str | None:
    for error in errors(body):
        if error.get("extensions", {}).get("code") == "BAD_USER_INPUT":
            return str(error["extensions"]["field"])
    invalid = [r["field"] for r in results(body) if r["__typename"] == "InvalidInputError"]
    return str(invalid[0]) if invalid else None


def allowed(body: Mapping[str, Any]) -> bool:
    """Ran: no GraphQL error and no refusal (a typed result such as not-found is an answer)."""
    return not errors(body) and not_permitted(body) is None


def fail(access: Access, caller: Caller, probe: object) -> None:
    pytest.fail(f"{caller.column}: the cell says {access.value!r}, which {probe} cannot check")


# ---------------------------------------------------------------- probes: how to call a row


class Probe(Protocol):
    async def check(self, access: Access, caller: Caller, shop: Shop) -> None: ...


type Variables = Callable[[Target, Shop], dict[str, Any]]


def ref_variables(target: Target, shop: Shop) -> dict[str, Any]:
    return {"ref": shop.ref(target)}


def identify_variables(target: Target, shop: Shop) -> dict[str, Any]:
    identities = {Target.SHOPPER: [email(ANN)["identity"]], Target.OTHER: [email(BOB)["identity"]]}
    anon = SHORT_VISITOR if target is Target.SHORT else VISITOR
    return {"anon": anon, "identities": identities.get(target, [])}


@dataclass(frozen=True)
class GraphQLCall:
    """A root field called over POST /graphql; ``targets``: whom its variables can address."""

    document: str
    variables: Variables = ref_variables
    targets: frozenset[Target] = frozenset(Target)

    async def check(self, access: Access, caller: Caller, shop: Shop) -> None:
        if access is Access.YES:  # for anyone: a known shopper, without a proof too
            body = await self.call(caller, Target.SHOPPER, shop)
            assert allowed(body), (caller.column, body)
        elif access is Access.NO:
            body = await self.call(caller, caller.target, shop)
            assert forbidden_by_role(body), (caller.column, body)
        elif access is Access.GRANTED:
            assert forbidden_by_role(await self.call(caller, caller.target, shop)), caller.column
            granted = Caller(caller.column, shop.granted_partner)
            body = await self.call(granted, granted.target, shop)
            assert allowed(body), (caller.column, "granted", body)
        elif access in (Access.OWN_VISITOR, Access.PROVEN_SHOPPER) and caller.storefront:
            await self.check_reach(access is Access.PROVEN_SHOPPER, caller, shop)
        else:
            fail(access, caller, self)

    async def check_reach(self, proven: bool, caller: Caller, shop: Shop) -> None:
        """Its own visitor always; the known shopper only with a proof naming them; never
        another shopper, a forged proof, a short anonymous id or a profile id."""
        visitor = await self.call(caller, Target.VISITOR, shop)
        assert allowed(visitor), visitor
        assert invalid_field(visitor) is None, visitor
        shopper = await self.call(caller, Target.SHOPPER, shop)
        if proven:
            assert allowed(shopper), shopper
            assert invalid_field(shopper) is None, shopper
        else:
            expected = MISSING if caller.headers else ("no_proof", UNION_REFUSAL)
            assert not_permitted(shopper) in expected, shopper
        if caller.headers:
            other = await self.call(caller, Target.OTHER, shop)
            assert not_permitted(other) in ("other_shopper", UNION_REFUSAL), other
            forged = Caller(caller.column, caller.key, {"shopper-proof": FORGED_PROOF})
            refused = await self.call(forged, Target.SHOPPER, shop)
            assert not_permitted(refused) in ("proof_refused", UNION_REFUSAL), refused
        short = await self.call(caller, Target.SHORT, shop)
        assert invalid_field(short) in ("ref.identity.value", "anonymousId"), short
        if Target.BY_ID in self.targets:
            by_id = await self.call(caller, Target.BY_ID, shop)
            assert not_permitted(by_id) in ("server_only", UNION_REFUSAL), by_id

    async def call(self, caller: Caller, target: Target, shop: Shop) -> dict[str, Any]:
        return await shop.execute(caller, self.document, self.variables(target, shop))


@dataclass(frozen=True)
class ProfileField:
    """A ``Profile`` field read through ``profile``, or, by an ingest key, which may not call
    it, through ``upsertProfile``'s answer."""

    selection: str

    def document(self, caller: Caller, selection: str) -> str:
        if caller.column is Column.INGEST:
            return (
                "mutation($ref: ProfileRef!) { upsertProfile(input: {ref: $ref}) {"
                f" __typename ... on ProfileUpserted {{ profile {{ {selection} }} }} }} }}"
            )
        return f"query($ref: ProfileRef!) {{ profile(ref: $ref) {{ {selection} }} }}"

    async def read(self, caller: Caller, shop: Shop, selection: str | None = None) -> dict[str, Any]:
        document = self.document(caller, selection or self.selection)
        return await shop.execute(caller, document, {"ref": shop.ref(caller.target)})

    async def check(self, access: Access, caller: Caller, shop: Shop) -> None:
        body = await self.read(caller, shop)
        if access is Access.YES:
            assert allowed(body), (caller.column, body)
            assert self.answered(body), (caller.column, body)
            if caller.storefront:
                await self.check_as_admin_sees(caller, shop)
        elif access is Access.NO:
            assert forbidden_by_role(body), (caller.column, body)
        elif access is Access.SHOWN_ONLY:
            assert allowed(body), (caller.column, body)
            assert self.answered(body), (caller.column, body)
            assert HIDDEN not in json.dumps(body["data"]), (caller.column, body)
            hidden = await self.read(caller, shop, self.hidden)
            if not_permitted(hidden) is None:
                assert allowed(hidden), hidden
                assert HIDDEN not in json.dumps(hidden["data"]), hidden
        else:
            fail(access, caller, self)

    @property
    def hidden(self) -> str:
        """The selection asking about the extension not shown to shoppers."""
        return self.selection.replace(f'"{SHOWN}"', f'"{HIDDEN}"')

    async def check_as_admin_sees(self, caller: Caller, shop: Shop) -> None:
        """A storefront key reads what an admin reads, of every extension too: nothing held back."""
        admin = Caller(Column.ADMIN, ADMIN_KEY)
        for selection in (self.selection, self.hidden):
            seen = await self.read(caller, shop, selection)
            assert seen == await self.read(admin, shop, selection), (caller.column, selection, seen)

    def answered(self, body: Mapping[str, Any]) -> bool:
        """The profile came back with the field (not, say, null or a typed error)."""
        name = self.selection.split("(")[0].split(" ")[0]
        return f'"{name}":' in json.dumps(body["data"])


def graphql_event(kind: str, target: Target, shop: Shop) -> dict[str, Any]:
    payloads: dict[str, dict[str, Any]] = {"page_view": {"pageView": {"url": "https://shop.example/"}}}
    payloads["order_completed"] = {"orderCompleted": {**ORDER, "orderId": f"o-{uuid.uuid4().hex}"}}
    address = shop.ref(target)["identity"]
    if address["type"] == "ANONYMOUS_ID":
        return {"at": AT, "channel": "WEB", "anonymousId": address["value"], "payload": payloads[kind]}
    return {"at": AT, "channel": "WEB", "ref": {"identity": address}, "payload": payloads[kind]}


def http_event(kind: str, target: Target, shop: Shop) -> dict[str, Any]:
    properties = {"url": "https://shop.example/"} if kind == "page_view" else {**ORDER}
    properties["orderId"] = f"o-{uuid.uuid4().hex}"
    address = shop.ref(target)["identity"]
    where = {"anonymousId": address["value"]} if address["type"] == "ANONYMOUS_ID" else {"identity": address}
    return {"type": kind, "at": AT, "channel": "web", **where, "properties": properties}


ORDER = {"total": "20.00", "currency": "EUR", "items": [{"sku": "A1", "price": "20.00", "quantity": 1}]}
TRACK = "mutation($events: [EventInput!]!) { track(events: $events) { results { status reason } } }"


@dataclass(frozen=True)
class Events:
    """Events sent by the ``track`` mutation or ``POST /v1/track``: each accepted or rejected."""

    over_http: bool

    async def send(
        self, caller: Caller, shop: Shop, events: list[tuple[str, Target]]
    ) -> list[dict[str, Any]]:
        """The outcome of each event (status lower-cased), or raises when the call was refused."""
        if self.over_http:
            headers = {"authorization": f"Bearer {caller.key}", **caller.headers}
            batch = {"events": [http_event(kind, target, shop) for kind, target in events]}
            response = await shop.gateway.http.post("/v1/track", json=batch, headers=headers)
            if response.status_code != 200:
                raise Refused(response.status_code, response.json())
            return list(response.json()["results"])
        variables = {"events": [graphql_event(kind, target, shop) for kind, target in events]}
        body = await shop.execute(caller, TRACK, variables)
        if errors(body):
            raise Refused(200, body)
        return [{**r, "status": r["status"].lower()} for r in body["data"]["track"]["results"]]

    async def check(self, access: Access, caller: Caller, shop: Shop) -> None:
        if access is Access.YES:  # a server key sends any event, for anyone
            outcomes = await self.send(
                caller, shop, [("page_view", Target.SHOPPER), ("order_completed", Target.SHOPPER)]
            )
            assert [o["status"] for o in outcomes] == ["accepted", "accepted"], outcomes
        elif access is Access.NO:
            with pytest.raises(Refused) as refused:
                await self.send(caller, shop, [("page_view", caller.target)])
            assert refused.value.status == 403 or forbidden_by_role(refused.value.body), refused.value
        elif access in (Access.VISITOR_EVENTS, Access.SHOPPER_EVENTS) and caller.storefront:
            await self.check_storefront(access is Access.SHOPPER_EVENTS, caller, shop)
        else:
            fail(access, caller, self)

    async def check_storefront(self, proven: bool, caller: Caller, shop: Shop) -> None:
        visitor, shopper, order, short = await self.send(
            caller,
            shop,
            [
                ("page_view", Target.VISITOR),
                ("page_view", Target.SHOPPER),
                ("order_completed", Target.VISITOR),
                ("page_view", Target.SHORT),
            ],
        )
        assert visitor["status"] == "accepted", visitor
        assert shopper["status"] == ("accepted" if proven else "rejected"), shopper
        assert order["status"] == "rejected", order
        assert "order_completed" in order["reason"], order
        assert "shop's servers" in order["reason"], order
        assert short["status"] == "rejected", short


class Refused(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__(status, body)
        self.status = status
        self.body: Any = body


@dataclass(frozen=True)
class Http:
    """A plain HTTP endpoint: allowed is 200, refused 401 or 403."""

    method: str
    path: str
    body: dict[str, Any] | None = None

    async def status(self, shop: Shop, key: str | None, headers: Mapping[str, str]) -> int:
        sent = {**headers, **({} if key is None else {"authorization": f"Bearer {key}"})}
        response = await shop.gateway.http.request(self.method, self.path, json=self.body, headers=sent)
        return response.status_code

    async def check(self, access: Access, caller: Caller, shop: Shop) -> None:
        status = await self.status(shop, caller.key, caller.headers)
        if access is Access.YES:
            assert status == 200, (caller.column, status)
        elif access is Access.NO:
            assert status in (401, 403), (caller.column, status)
        elif access is Access.OPEN:
            assert (status, await self.status(shop, None, {})) == (200, 200), caller.column
        else:
            fail(access, caller, self)


@contextlib.asynccontextmanager
async def websocket(shop: Shop, caller: Caller) -> AsyncIterator[FeedSocket | None]:
    """A ``graphql-transport-ws`` connection with the caller's key and proof, once acknowledged;
    None when the gateway refused it."""
    headers = {"authorization": f"Bearer {caller.key}", **caller.headers}
    url = shop.base.replace("http", "ws", 1) + "/graphql"
    try:
        connection = await connect(url, subprotocols=[Subprotocol(TRANSPORT_WS)], additional_headers=headers)
    except InvalidStatus:
        yield None
        return
    async with connection:
        feed = FeedSocket(connection, TRANSPORT_WS)
        await feed.send({"type": "connection_init", "payload": {}})
        try:
            acknowledged = (await feed.receive())["type"] == "connection_ack"
        except ConnectionClosed:
            acknowledged = False
        yield feed if acknowledged else None


class WebSocketConnection:
    async def check(self, access: Access, caller: Caller, shop: Shop) -> None:
        async with websocket(shop, caller) as feed:
            if access is Access.YES:
                assert feed is not None, caller.column
            elif access is Access.NO:
                assert feed is None, caller.column
            else:
                fail(access, caller, self)


class Subscription:
    """``changes``: admitted, the subscriber gets the change an event makes; refused, an error."""

    async def check(self, access: Access, caller: Caller, shop: Shop) -> None:
        async with websocket(shop, caller) as feed:
            assert feed is not None, caller.column
            await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
            if access is Access.YES:
                server = Caller(Column.ADMIN, ADMIN_KEY)
                assert await Events(over_http=False).send(server, shop, [("page_view", Target.SHOPPER)])
                change = await feed.change()
                assert change["profileId"] == shop.profile_id, change
            elif access is Access.NO:
                message = await feed.receive()
                assert message["type"] in ("error", "next"), message
                assert "FORBIDDEN" in json.dumps(message), message
            else:
                fail(access, caller, self)


def query(document: str) -> GraphQLCall:
    """A root field whose answer does not depend on whom the caller addresses."""
    return GraphQLCall(document, lambda target, shop: {})


UNION = "__typename ... on Error { message } ... on InvalidInputError { field }"
ANSWERED = "__typename ... on Error { message }"  # for results that cannot be an InvalidInputError
REF = "query($ref: ProfileRef!)"
POLICY = (
    '{metric: NET_SPEND, windowDays: 365, retention: {kind: NONE}, tiers: [{name: "MEMBER", threshold: "0"}]}'
)
IDENTIFY = (
    "mutation($anon: String, $identities: [IdentityInput!]!) {"
    f" identify(anonymousId: $anon, identities: $identities) {{ {UNION} }} }}"
)
SET_CONSENT = (
    'mutation($ref: ProfileRef!) { setConsent(ref: $ref, consent: {purpose: "ads", granted: false,'
    f' source: "cookie-banner"}}) {{ {UNION} }} }}'
)
ELSEWHERE = '{identity: {type: EMAIL, value: "nobody.access@example.com"}}'  # no profile: nothing changes

# How to call each row; what to expect is in the table.
PROBES: dict[str, Probe] = {
    "Query.aggregateCheck": query("{ aggregateCheck(first: 1) { agrees } }"),
    "Query.apiKeys": query("{ apiKeys { id } }"),
    "Query.auditLog": query("{ auditLog { nextCursor } }"),
    "Query.consentPurposes": query("{ consentPurposes }"),
    "Query.destination": query('{ destination(id: "none") { id } }'),
    "Query.destinations": query("{ destinations { id } }"),
    "Query.couponPerformance": query('{ couponPerformance(campaign: "spring") { issued } }'),
    "Query.exportProfile": GraphQLCall(f"{REF} {{ exportProfile(ref: $ref) {{ __typename }} }}"),
    "Query.extensionDefinitions": query("{ extensionDefinitions { name } }"),
    "Query.loyalty": GraphQLCall(f"{REF} {{ loyalty(ref: $ref) {{ reason }} }}"),
    "Query.loyaltyWhatIf": GraphQLCall(
        f'{REF} {{ loyaltyWhatIf(ref: $ref, cartTotal: "10.00") {{ reason }} }}'
    ),
    "Query.merges": GraphQLCall(f"{REF} {{ merges(ref: $ref) {{ loser }} }}"),
    "Query.persistedOperations": query("{ persistedOperations { id } }"),
    "Query.previewSegment": query('{ previewSegment(rule: "orders >= 1") { __typename } }'),
    "Query.profile": GraphQLCall(f"{REF} {{ profile(ref: $ref) {{ id }} }}"),
    "Query.segment": query('{ segment(key: "buyers") { key } }'),
    "Query.segments": query("{ segments { key } }"),
    "Query.shopMetrics": query(
        '{ shopMetrics(from: "2026-11-19", to: "2026-11-20") { total { visitors } } }'
    ),
    "Query.tierDistribution": query("{ tierDistribution { total } }"),
    "Query.tierPolicies": query("{ tierPolicies { version } }"),
    "Query.tierPolicy": query("{ tierPolicy { version } }"),
    "Query.viewer": query("{ viewer { role } }"),
    "Mutation.activateTierPolicy": query(f"mutation {{ activateTierPolicy(version: 99) {{ {UNION} }} }}"),
    "Mutation.createApiKey": query(f'mutation {{ createApiKey(name: "probe", role: INGEST) {{ {UNION} }} }}'),
    "Mutation.defineCouponCampaign": query(
        f'mutation {{ defineCouponCampaign(name: "spring") {{ {UNION} }} }}'
    ),
    "Mutation.defineExtension": query(
        f'mutation {{ defineExtension(input: {{name: "probe", description: "p"}}) {{ {UNION} }} }}'
    ),
    "Mutation.deletePersistedOperation": query('mutation { deletePersistedOperation(id: "x") }'),
    "Mutation.deleteSegment": query(f'mutation {{ deleteSegment(key: "no-such") {{ {UNION} }} }}'),
    "Mutation.eraseProfile": query(
        f'mutation {{ eraseProfile(ref: {ELSEWHERE}, reason: "art. 17") {{ {UNION} }} }}'
    ),
    "Mutation.identify": GraphQLCall(IDENTIFY, identify_variables, frozenset(Target) - {Target.BY_ID}),
    "Mutation.issueCoupon": GraphQLCall(
        f'mutation($ref: ProfileRef!) {{ issueCoupon(ref: $ref, campaign: "spring", channel: EMAIL,'
        f' expiresAt: "2027-01-01T00:00:00Z") {{ {UNION} }} }}'
    ),
    "Mutation.issueCoupons": query(
        'mutation { issueCoupons(campaign: "spring", count: 1, expiresAt: "2027-01-01T00:00:00Z")'
        f" {{ {UNION} }} }}"
    ),
    "Mutation.mergeProfiles": query(
        f'mutation {{ mergeProfiles(into: {ELSEWHERE}, from: {ELSEWHERE}, reason: "r") {{ {UNION} }} }}'
    ),
    "Mutation.publishTierPolicy": query(f"mutation {{ publishTierPolicy(policy: {POLICY}) {{ {UNION} }} }}"),
    "Mutation.registerPersistedOperation": query(
        f'mutation {{ registerPersistedOperation(document: "{{ viewer {{ name }} }}") {{ {UNION} }} }}'
    ),
    "Mutation.removeExtension": GraphQLCall(
        f'mutation($ref: ProfileRef!) {{ removeExtension(ref: $ref, name: "probe-flag", reason: "r")'
        f" {{ {UNION} }} }}"
    ),
    "Mutation.revokeApiKey": query('mutation { revokeApiKey(idOrName: "probe") { keys { id } } }'),
    "Mutation.createDestination": query(
        f'mutation {{ createDestination(input: {{id: "probe", name: "Probe", url: "ftp://x",'
        f' send: {{tiers: true}}, consentPurpose: "ads"}}) {{ {UNION} }} }}'
    ),
    "Mutation.updateDestination": query(
        f'mutation {{ updateDestination(input: {{id: "probe", name: "Probe", url: "ftp://x",'
        f' send: {{tiers: true}}, consentPurpose: "ads"}}) {{ {UNION} }} }}'
    ),
    "Mutation.pauseDestination": query(f'mutation {{ pauseDestination(id: "none") {{ {ANSWERED} }} }}'),
    "Mutation.resumeDestination": query(f'mutation {{ resumeDestination(id: "none") {{ {ANSWERED} }} }}'),
    "Mutation.rotateDestinationSecret": query(
        f'mutation {{ rotateDestinationSecret(id: "none") {{ {ANSWERED} }} }}'
    ),
    "Mutation.deleteDestination": query(f'mutation {{ deleteDestination(id: "none") {{ {ANSWERED} }} }}'),
    "Mutation.resyncDestination": query(f'mutation {{ resyncDestination(id: "none") {{ {UNION} }} }}'),
    "Mutation.replayDeadLetter": query(f'mutation {{ replayDeadLetter(batchId: "none") {{ {ANSWERED} }} }}'),
    "Mutation.resendDestinationRange": query(
        'mutation { resendDestinationRange(id: "none", from: "2026-11-19T00:00:00Z",'
        f' to: "2026-11-20T00:00:00Z") {{ {UNION} }} }}'
    ),
    "Mutation.saveSegment": query(
        f'mutation {{ saveSegment(input: {{key: "probe", name: "Probe", rule: "orders >= 1"}})'
        f" {{ {UNION} }} }}"
    ),
    "Mutation.setConsent": GraphQLCall(SET_CONSENT),
    "Mutation.setExtension": GraphQLCall(
        f'mutation($ref: ProfileRef!) {{ setExtension(ref: $ref, name: "probe-flag", reason: "r")'
        f" {{ {UNION} }} }}"
    ),
    "Mutation.track": Events(over_http=False),
    "Mutation.unmergeProfiles": query(
        f'mutation {{ unmergeProfiles(profileId: "no-such", reason: "r") {{ {UNION} }} }}'
    ),
    "Mutation.upsertProfile": GraphQLCall(
        f"mutation($ref: ProfileRef!) {{ upsertProfile(input: {{ref: $ref}}) {{ {UNION} }} }}"
    ),
    "Subscription.changes": Subscription(),
    "GET /admin": Http("GET", "/admin"),
    "GET /admin/assets/{path}": Http("GET", "/admin/assets/app.js"),
    "GET /graphiql/assets/{path}": Http("GET", "/graphiql/assets/start.js"),
    "GET /graphql": Http("GET", "/graphql?query=%7Bviewer%7Brole%7D%7D"),
    "POST /graphql": Http("POST", "/graphql", {"query": "{ viewer { role } }"}),
    "WebSocket /graphql": WebSocketConnection(),
    "GET /favicon.ico": Http("GET", "/favicon.ico"),
    "GET /healthz": Http("GET", "/healthz"),
    "GET /metrics": Http("GET", "/metrics"),
    "GET /readyz": Http("GET", "/readyz"),
    "GET /v1/segments/{key}/audience": Http("GET", "/v1/segments/buyers/audience?purpose=ads"),
    "POST /v1/track": Events(over_http=True),
    "Profile.consented": ProfileField('consented(purpose: "ads")'),
    "Profile.consents": ProfileField("consents { purpose }"),
    "Profile.createdAt": ProfileField("createdAt"),
    "Profile.explainSegment": ProfileField('explainSegment(key: "buyers") { held }'),
    "Profile.extensionLog": ProfileField("extensionLog { action }"),
    "Profile.extensionNames": ProfileField("extensionNames"),
    "Profile.extensions": ProfileField("extensions { name }"),
    "Profile.hasExtension": ProfileField(f'hasExtension(name: "{SHOWN}")'),
    "Profile.id": ProfileField("id"),
    "Profile.identities": ProfileField("identities { type value }"),
    "Profile.inSegment": ProfileField('inSegment(key: "buyers")'),
    "Profile.loyalty": ProfileField("loyalty { reason }"),
    "Profile.mergedFrom": ProfileField("mergedFrom"),
    "Profile.metrics": ProfileField("metrics { orders }"),
    "Profile.segments": ProfileField("segments"),
    "Profile.traits": ProfileField("traits"),
    "Profile.updatedAt": ProfileField("updatedAt"),
    "Profile.version": ProfileField("version"),
}


# ---------------------------------------------------------------- the shop every test calls


async def admin(gateway: GatewayClient, document: str, variables: dict[str, Any] | None = None) -> Any:
    data = (await gateway.execute(document, variables)).data
    return next(iter(data.values()))


async def open_shop(gateway: GatewayClient, base: str) -> Shop:
    """ANN, who is VISITOR too, with an extension shown to shoppers and one not, consenting to
    partner sharing; a segment; and a key of each server role."""
    define = "mutation($input: DefineExtensionInput!) { defineExtension(input: $input) { __typename } }"
    for definition in (
        {"name": SHOWN, "description": "VIP", "shownToShopper": True},
        {"name": HIDDEN, "description": "Watched"},
        {"name": "probe-flag", "description": "Set by the probes", "partnerSettable": True},
    ):
        assert await admin(gateway, define, {"input": definition}) == {"__typename": "ExtensionDefined"}
    identified = await admin(
        gateway,
        IDENTIFY.replace(UNION, "... on Identified { profile { id } }"),
        {"anon": VISITOR, "identities": [email(ANN)["identity"]]},
    )
    set_extension = (
        "mutation($name: String!) { setExtension(ref: {identity: {type: EMAIL, value: "
        f'"{ANN}"}}}}, name: $name, reason: "r") {{ __typename }} }}'
    )
    for name in (SHOWN, HIDDEN):
        assert await admin(gateway, set_extension, {"name": name}) == {"__typename": "ExtensionChanged"}
    consent = (
        'mutation($ref: ProfileRef!) { setConsent(ref: $ref, consent: {purpose: "partner_sharing",'
        ' granted: true, source: "signup"}) { __typename } }'
    )
    assert await admin(gateway, consent, {"ref": email(ANN)}) == {"__typename": "ConsentSet"}
    segment = (
        'mutation { saveSegment(input: {key: "buyers", name: "Buyers", rule: "orders >= 1"}) { __typename } }'
    )
    assert await admin(gateway, segment) == {"__typename": "SegmentSaved"}
    granted = await admin(
        gateway,
        'mutation($fields: [String!]) { createApiKey(name: "table-metrics", role: PARTNER, fields: $fields)'
        " { ... on ApiKeyCreated { token } } }",
        {"fields": [SHOP_METRICS_GRANT]},
    )
    keys = {
        Column.ADMIN: ADMIN_KEY,
        Column.INGEST: await gateway.create_key("INGEST", "table-ingest"),
        Column.PARTNER: await gateway.create_key("PARTNER", "table-partner"),
    }
    storefront = await gateway.create_storefront_key("table-shop")
    return Shop(gateway, base, keys, granted["token"], storefront, identified["profile"]["id"])


@pytest.fixture(scope="module")
async def shop(store_uri: str) -> AsyncIterator[Shop]:
    """One gateway for the module: HTTP in-process, WebSockets over a real socket (``listening``);
    rate limits out of the way (they are not access)."""
    unlimited = {
        f"rate_limit_{role}_burst": 1_000_000 for role in ("admin", "ingest", "partner", "storefront")
    }
    settings = Settings(
        mongodb_uri=store_uri,
        database=f"test_{uuid.uuid4().hex[:12]}",
        admin_key=ADMIN_KEY,
        storage_layout=TEST_LAYOUT_KIND,
        store_partitions=TEST_LAYOUT.partitions if TEST_LAYOUT.event_segment_size else None,
        event_segment_size=TEST_LAYOUT.event_segment_size,
        key_cache_seconds=60,  # the keys live as long as the module
        metrics_token=SecretStr(SCRAPE_TOKEN),
        **unlimited,  # type: ignore[arg-type]  # pydantic-settings takes them by name
    )
    app = create_app(settings, clock=FrozenClock(NOW))
    async with LifespanManager(app) as started, listening(started.app) as base:
        transport = httpx.ASGITransport(app=started.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield await open_shop(GatewayClient(http), base)
    cleanup = open_client(store_uri)
    await cleanup.drop_database(settings.database)
    await cleanup.close()


@contextlib.asynccontextmanager
async def listening(app: ASGIApp) -> AsyncIterator[str]:
    """``app``, whose lifespan runs already, served by uvicorn on a free port for WebSockets;
    its base URL. (HTTP goes in-process: over a socket each request waits out delayed ACKs.)"""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def callers(shop: Shop, *, fresh: bool = False) -> dict[Column, Caller]:
    """A caller per column: the shared server keys, and a storefront key without and with a
    proof naming ANN; ``fresh``: a new storefront key, whose refusals for want of a proof start
    from none (they are slowed per key and client)."""
    storefront = shop.storefront
    if fresh:
        storefront = await shop.gateway.create_storefront_key(f"table-shop-{uuid.uuid4().hex[:8]}")
    assert storefront.secret is not None
    proof = {"shopper-proof": mint(storefront.secret, storefront.key_id, f"email:{ANN}", NOW)}
    return {
        **{column: Caller(column, key) for column, key in shop.keys.items()},
        Column.STOREFRONT: Caller(Column.STOREFRONT, storefront.token),
        Column.PROVEN: Caller(Column.PROVEN, storefront.token, proof),
    }


# ---------------------------------------------------------------- the tests

ROWS = [*TABLES.roots, *TABLES.profile]


def test_the_committed_table_is_the_one_the_code_generates() -> None:
    committed = DOCUMENT.read_text()
    assert with_table(committed, markdown(TABLES)) == committed, (
        "docs/access.md is out of date with the code: run `profilegate export-access-table` and commit it"
    )


def test_every_root_field_endpoint_and_profile_field_has_a_row_and_a_probe() -> None:
    schema = graphql.build_schema(schema_sdl())
    profile = schema.get_type("Profile")
    assert isinstance(profile, graphql.GraphQLObjectType)
    types = {
        "Query": schema.query_type,
        "Mutation": schema.mutation_type,
        "Subscription": schema.subscription_type,
        "Profile": profile,
    }
    fields = {f"{name}.{field}" for name, type_ in types.items() if type_ for field in type_.fields}
    gateway = create_app(Settings(mongodb_uri="mongodb://unused", env="development", admin_console=True))
    endpoints = set()
    for route in gateway.routes:
        if isinstance(route, Mount):
            endpoints.add(f"GET {route.path}/{{path}}")
        elif isinstance(route, WebSocketRoute):
            endpoints.add(f"WebSocket {route.path}")
        else:
            assert isinstance(route, Route)
            endpoints |= {
                f"{method} {route.path}" for method in (route.methods or {"GET"}) - {"HEAD", "OPTIONS"}
            }
    rows = {row.name for row in ROWS}
    assert rows == fields | endpoints
    assert set(PROBES) == rows, "every row needs a probe here saying how to call it"


def test_the_command_rewrites_the_table_and_keeps_the_prose_around_it(tmp_path: Path) -> None:
    target = tmp_path / "access.md"
    created = CliRunner().invoke(cli, ["export-access-table", "--output", str(target)])
    assert created.exit_code == 0, created.output
    assert target.read_text() == with_table(NEW_DOCUMENT, markdown(TABLES))
    target.write_text(f"# Access\n\nBefore.\n\n{START_MARKER}\nstale\n{END_MARKER}\n\nAfter.\n")
    rewritten = CliRunner().invoke(cli, ["export-access-table", "--output", str(target)])
    assert rewritten.exit_code == 0, rewritten.output
    expected = f"# Access\n\nBefore.\n\n{START_MARKER}\n{markdown(TABLES)}\n{END_MARKER}\n\nAfter.\n"
    assert target.read_text() == expected


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
async def test_every_cell_of_the_row_holds(shop: Shop, row: Row) -> None:
    probe = PROBES.get(row.name)
    assert probe is not None, f"{row.name}: add to PROBES how to call it"
    refusing = {Access.OWN_VISITOR, Access.PROVEN_SHOPPER, Access.VISITOR_EVENTS, Access.SHOPPER_EVENTS}
    for column, caller in (await callers(shop, fresh=bool(refusing & set(row.cells.values())))).items():
        await probe.check(row.cells[column], caller, shop)


async def test_a_storefront_identify_writes_no_traits_and_never_merges_two_known_profiles(shop: Shop) -> None:
    """What the identify row's note says: with a proof naming ANN and CARL, who each hold a
    profile, the visitor is not linked to both; traits come from the shop's servers only."""
    upsert = "mutation($ref: ProfileRef!) { upsertProfile(input: {ref: $ref}) { __typename } }"
    assert await admin(shop.gateway, upsert, {"ref": email(CARL)}) == {"__typename": "ProfileUpserted"}
    key = shop.storefront
    assert key.secret is not None
    both = mint(key.secret, key.key_id, f"email:{ANN}", NOW, identities=[f"email:{CARL}"])
    proven = Caller(Column.PROVEN, key.token, {"shopper-proof": both})
    identities = [email(ANN)["identity"], email(CARL)["identity"]]
    merged = await shop.execute(proven, IDENTIFY, {"anon": VISITOR, "identities": identities})
    assert typenames(merged) == {"MergeBlockedError"}, merged
    traits = IDENTIFY.replace("identities: $identities)", "identities: $identities, traits: {vip: true})")
    visitor = Caller(Column.STOREFRONT, key.token)
    with_traits = await shop.execute(visitor, traits, {"anon": VISITOR, "identities": []})
    assert not_permitted(with_traits) == UNION_REFUSAL, with_traits

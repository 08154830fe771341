"""docs/destinations.md against real deliveries: every batch a receiver got validates against
the page's JSON Schemas (each message against the schema of its type), and the page's Python and
Node.js signature checks accept a request the gateway signed and refuse one altered."""

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from profilegate.app import create_app
from profilegate.settings import Settings
from tests.api.test_changes import order, ref, view
from tests.api.test_destinations import (
    SEGMENT,
    arrived,
    consent,
    create,
    track,
)
from tests.api.test_gdpr import ERASE
from tests.destination_receiver import Received, Receiver, receiving
from tests.examples import fenced
from tests.gateway import FrozenClock, GatewayClient, running

DOC = Path(__file__).parents[2] / "docs" / "destinations.md"
UPSERT_CONSENTING = """
mutation($r: ProfileRef!) {
  upsertProfile(input: {ref: $r, consents: [{purpose: "ads", granted: true, source: "signup"}]}) {
    __typename
  }
}
"""
UPSERT_COUNTRY = """
mutation($r: ProfileRef!) { upsertProfile(input: {ref: $r, traits: {country: "DE"}}) { __typename } }
"""
POLICY = json.loads((Path(__file__).parents[2] / "fixtures" / "tier_policy.json").read_text())


@pytest.fixture
async def gateway(settings: Settings, clock: FrozenClock) -> AsyncIterator[GatewayClient]:
    """A gateway that may send to loopback, looking at its destinations every 0.1 s."""
    quick = settings.model_copy(
        update={
            "destinations_allow_private": True,
            "destinations_refresh_seconds": 0.1,
            "feed_poll_seconds": 0.1,
        }
    )
    async with running(create_app(quick, clock=clock)) as http:
        yield GatewayClient(http)


def doc_blocks(language: str) -> list[str]:
    return [source for _, source in fenced(DOC, language)]


def schemas() -> dict[str, dict[str, Any]]:
    """The page's JSON Schemas by their $id."""
    found = [json.loads(block) for block in doc_blocks("json") if '"$schema"' in block]
    return {schema["$id"]: schema for schema in found}


def validator(schema_id: str) -> Draft202012Validator:
    every = schemas()
    registry: Registry[Any] = Registry().with_resources(
        (key, Resource.from_contents(schema)) for key, schema in every.items()
    )
    return Draft202012Validator(every[schema_id], registry=registry)


def schema_of(message_type: str) -> str:
    """The $id of the schema for messages of this type (not the one every message has)."""
    for key, schema in schemas().items():
        typed = schema.get("properties", {}).get("type", {})
        if key != "message.json" and message_type in typed.get("enum", [typed.get("const")]):
            return key
    raise AssertionError(f"docs/destinations.md has no schema for {message_type} messages")


def problems(schema_id: str, document: Any) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator(schema_id).iter_errors(document)]


async def types_arrived(receiver: Receiver, types: set[str], removals: int = 0) -> list[dict[str, Any]]:
    """The delivered messages, once messages of ``types`` (and ``removals`` profile.removed) came."""

    def seen() -> bool:
        messages = receiver.messages()
        removed = sum(message["type"] == "profile.removed" for message in messages)
        return types <= {message["type"] for message in messages} and removed >= removals

    deadline = time.monotonic() + 10
    while not seen():
        assert time.monotonic() < deadline, [message["type"] for message in receiver.messages()]
        await asyncio.sleep(0.05)
    return receiver.messages()


async def everything_happens(gateway: GatewayClient, receiver: Receiver) -> list[dict[str, Any]]:
    """Two shoppers created, one updated and given an extension, both entering a
    segment and a tier; then one withdraws the destination's consent and the other is erased.
    Each step waits for its messages: a message is built from the profile as it is when sent."""
    for document, variables in [
        ("mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { __typename } }", {"i": SEGMENT}),
        ('mutation { defineExtension(input: {name: "vip", description: "VIP"}) { __typename } }', {}),
        (
            "mutation($p: TierPolicyInput!) { publishTierPolicy(policy: $p, activate: true) { __typename } }",
            {"p": POLICY},
        ),
    ]:
        assert "errors" not in (await gateway.execute(document, variables)).body
    await create(
        gateway,
        receiver,
        send={
            "segments": ["big-spenders"],
            "tiers": True,
            "extensions": ["vip"],
            "kinds": ["PROFILE_CREATED", "PROFILE_UPDATED", "CONSENT_CHANGED"],
        },
        fields=["identities", "traits.country"],
    )
    for shopper in ("ann@example.com", "bob@example.com"):  # created with the consent: nothing to race
        created = await gateway.execute(UPSERT_CONSENTING, {"r": ref(shopper)})
        assert created.data["upsertProfile"]["__typename"] == "ProfileUpserted", created.body
    await arrived(receiver, 2)
    await track(gateway, view("v-ann", "ann@example.com"), view("v-bob", "bob@example.com"))
    assert "errors" not in (await gateway.execute(UPSERT_COUNTRY, {"r": ref("ann@example.com")})).body
    grant = 'mutation($r: ProfileRef!) { setExtension(ref: $r, name: "vip", reason: "asked") { __typename } }'
    assert "errors" not in (await gateway.execute(grant, {"r": ref("ann@example.com")})).body
    await arrived(receiver, 4)
    await track(gateway, order("o1", "ann@example.com", "3000.00"), order("o2", "bob@example.com", "400.00"))
    await types_arrived(receiver, {"segment.entered"})
    await consent(gateway, "ann@example.com", False)
    erased = await gateway.execute(ERASE, {"ref": ref("bob@example.com"), "reason": "art. 17"})
    assert erased.data["eraseProfile"]["__typename"] == "ProfileErased"
    return await types_arrived(receiver, {"segment.left", "profile.removed"}, removals=2)


async def test_every_delivered_batch_and_message_validates_against_the_documented_schemas(
    gateway: GatewayClient,
) -> None:
    with receiving() as receiver:
        messages = await everything_happens(gateway, receiver)
    types = {message["type"] for message in messages}
    assert {
        "profile.created",
        "profile.updated",
        "extension.set",
        "segment.entered",
        "segment.left",
        "profile.removed",
    } <= types, types
    for request in receiver.delivered():
        assert problems("batch.json", json.loads(request.body)) == [], request.body
    for message in messages:
        assert problems(schema_of(message["type"]), message) == [], message


def test_a_message_missing_what_its_schema_requires_is_refused() -> None:
    """The schemas are not vacuous: a removal without its reason, a batch id of another form."""
    removal = {"type": "profile.removed", "profileId": "p1", "at": "2026-12-08T09:00:00Z", "cursor": "c"}
    assert problems("profile.removed.json", removal | {"hashedIdentifiers": {}}) != []
    batch = {"batchId": "b-1", "destination": "esp", "messages": [removal]}
    assert problems("batch.json", batch) != []


def run_check(language: str, secret: str, request: Received, body: bytes) -> Any:
    """The page's check in ``language`` on this request (with ``body`` as received); its answer."""
    (source,) = doc_blocks(language)
    call = {
        "python": (
            "import json, os, sys\n"
            "headers = json.loads(os.environ['HEADERS'])\n"
            "print(json.dumps(verified_batch(os.environ['SECRET'], headers, sys.stdin.buffer.read())))"
        ),
        "javascript": (
            "const body = require('node:fs').readFileSync(0, 'utf8');\n"
            "const headers = JSON.parse(process.env.HEADERS);\n"
            "console.log(JSON.stringify(verifiedBatch(process.env.SECRET, headers, body)));"
        ),
    }[language]
    command = [sys.executable, "-c"] if language == "python" else ["node", "-e"]
    ran = subprocess.run(
        [*command, f"{source}\n{call}"],
        input=body,
        env={"SECRET": secret, "HEADERS": json.dumps(request.headers), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr.decode()
    return json.loads(ran.stdout)


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_the_documented_signature_checks_accept_a_signed_request_and_refuse_an_altered_one(
    gateway: GatewayClient, language: str
) -> None:
    assert shutil.which("node"), "the JavaScript check runs on Node.js"
    with receiving() as receiver:
        await create(gateway, receiver, send={"kinds": ["PROFILE_CREATED"]})
        await track(gateway, view("v-ann", "ann@example.com"))
        await consent(gateway, "ann@example.com", True)
        await arrived(receiver, 1)
    [request] = receiver.delivered()
    secret = receiver.secrets[0]
    altered = request.body.replace(b'"version":1', b'"version":2')
    assert altered != request.body

    assert run_check(language, secret, request, request.body) == json.loads(request.body)
    assert run_check(language, secret, request, altered) is None
    other = "whsec_" + "A" * 43 + "="
    assert run_check(language, other, request, request.body) is None

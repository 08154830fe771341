"""Every command the hot paths send to a sharded collection carries its shard key, so that on a
sharded cluster mongos routes it to one shard (storage/sharding.py names the keys).

The gateway runs in the MongoDB layout (one collection per logical collection) and every
command it sends is recorded through pymongo's command monitoring.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from pymongo import monitoring

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.sharding import PLACEMENTS, sharded
from tests.api.test_extensions import SET, define
from tests.api.test_identify import IDENTIFY
from tests.api.test_loyalty import FIXTURE, LOYALTY, PUBLISH, define_fixture_extensions, email
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, StorefrontKey, running
from tests.shopper_proofs import proof_for

# Reads and writes that mongos routes by their filter or documents.
TARGETED = {"find": "filter", "findAndModify": "query", "update": "updates", "delete": "deletes"}
# Commands that read whole collections: never on a hot path to a sharded one. An aggregate is
# targeted when its first stage matches the shard key and every collection it joins is
# joined on that collection's key (checked in _pipeline_untargeted).
SCATTERED = {"count", "distinct"}


@dataclass
class Recorder(monitoring.CommandListener):
    """The commands sent to one database while recording (pymongo's listeners are global)."""

    database: str | None = None
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        self.commands = []
        yield self.commands
        self.commands = []


RECORDER = Recorder()
monitoring.register(RECORDER)  # for the clients created from now on, the gateway's included


@pytest.fixture
async def mongodb_layout(
    store_uri: str, database_name: str, clock: FrozenClock
) -> AsyncIterator[GatewayClient]:
    settings = Settings(
        mongodb_uri=store_uri, database=database_name, admin_key=ADMIN_KEY, key_cache_seconds=0
    )
    assert not settings.uses_embedded_store, "a gateway given MONGODB_URI lays out for MongoDB"
    RECORDER.database = database_name
    try:
        async with running(create_app(settings, clock=clock)) as http:
            yield GatewayClient(http)
    finally:
        RECORDER.database = None


def untargeted(name: str, command: dict[str, Any]) -> list[str]:
    """Why ``command`` would not go to one shard: empty when it would, or is not sharded."""
    collection = command.get(name)
    key = sharded().get(collection) if isinstance(collection, str) else None
    if key is None or not isinstance(collection, str):
        return []
    if name in SCATTERED:
        return [f"{name} on {collection} reads every shard"]
    if name == "aggregate":
        return _pipeline_untargeted(collection, key, command["pipeline"])
    if name == "insert":
        return [f"insert into {collection} without {key}" for d in command["documents"] if key not in d]
    if name not in TARGETED:
        return []
    filters = command[TARGETED[name]]
    filters = [entry["q"] for entry in filters] if isinstance(filters, list) else [filters]
    return [f"{name} on {collection} by {f}" for f in filters if not _equality_on(f, key)]


def _equality_on(query: dict[str, Any], key: str) -> bool:
    """The key by equality, or ``$in`` a list of values: mongos sends the query to the shards
    that own those values only (https://www.mongodb.com/docs/manual/core/sharded-cluster-query-router/#targeted-operations-vs.-broadcast-operations)."""
    value = query.get(key)
    if isinstance(value, str):
        return True
    if not isinstance(value, dict):
        return False
    within = value.get("$in")
    return isinstance(value.get("$eq"), str) or (
        isinstance(within, list) and all(isinstance(v, str) for v in within)
    )


def _pipeline_untargeted(collection: str, key: str, pipeline: list[dict[str, Any]]) -> list[str]:
    first = pipeline[0].get("$match") if pipeline else None
    if not isinstance(first, dict) or not _equality_on(first, key):
        return [f"aggregate on {collection} reads every shard"]
    reasons = []
    for stage in pipeline[1:]:
        if "$lookup" in stage:
            joined, foreign = stage["$lookup"]["from"], stage["$lookup"].get("foreignField")
            joined_key = sharded().get(joined)
            if joined_key is not None and foreign != joined_key:
                reasons.append(f"$lookup into {joined} on {foreign}, not {joined_key}")
        if "$unionWith" in stage:
            union = stage["$unionWith"]
            union_key = sharded().get(union["coll"])
            if union_key is not None:
                reasons += _pipeline_untargeted(union["coll"], union_key, union.get("pipeline", []))
    return reasons


def order(event_id: str, who: str, total: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "order_completed",
        "at": "2026-11-19T09:00:00Z",
        "channel": "web",
        "identity": {"type": "EMAIL", "value": who},
        "properties": {
            "orderId": f"o-{event_id}",
            "total": total,
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "coats", "price": total, "quantity": 1}],
        },
    }


async def track(gateway: GatewayClient, *events: dict[str, Any]) -> None:
    response = await gateway.http.post(
        "/v1/track", json={"events": list(events)}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events), response.text


async def open_shop(gateway: GatewayClient) -> StorefrontKey:
    """Extensions, the tier policy and a storefront key: the shop's set-up. Returns the key."""
    await define_fixture_extensions(gateway)
    await define(gateway, name="vip")
    published = await gateway.execute(PUBLISH, {"policy": FIXTURE, "activate": True})
    assert published.data["publishTierPolicy"]["__typename"] == "TierPolicy"
    return await gateway.create_storefront_key("shop-web")


async def hot_paths(gateway: GatewayClient, storefront: StorefrontKey, now: datetime) -> None:
    """What a busy shop sends: tracking, checkouts (known and guest), identify, an extension."""
    await track(gateway, order("e-1", "ann@example.com", "120.00"))
    await track(gateway, *(order(f"e-{n}", f"c{n}@example.com", "10.00") for n in range(2, 7)))
    for who in ("ann@example.com", "guest@example.com"):
        proof = proof_for(storefront, "EMAIL", who, now)
        result = await gateway.execute(LOYALTY, {"ref": email(who)}, key=storefront.token, headers=proof)
        assert result.data["loyalty"]["policyVersion"] == 1
    identities = [{"type": "EMAIL", "value": "ann@example.com"}]
    identified = await gateway.execute(IDENTIFY, {"anon": "anon-1", "identities": identities})
    assert identified.data["identify"]["__typename"] == "Identified"
    ref = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}
    changed = await gateway.execute(SET, {"ref": ref, "name": "vip", "reason": "top"})
    assert changed.data["setExtension"]["__typename"] == "ExtensionChanged"


async def test_every_command_of_the_hot_paths_carries_the_shard_key(
    mongodb_layout: GatewayClient, clock: FrozenClock
) -> None:
    gateway = mongodb_layout
    storefront = await open_shop(gateway)

    with RECORDER.recording() as commands:
        await hot_paths(gateway, storefront, clock.now)
        await asyncio.sleep(0.6)  # one poll of the feed follower (PROFILEGATE_FEED_POLL_SECONDS)
        sent = list(commands)

    reached = {command.get(name) for name, command in sent}
    assert {"profiles", "profile_checkout", "identity_keys", "events", "tombstones", "changes"} <= reached
    assert [reason for name, command in sent for reason in untargeted(name, command)] == []


def test_the_check_catches_a_query_without_the_key() -> None:
    assert untargeted("find", {"find": "profiles", "filter": {"mergedInto": None}})
    assert untargeted("update", {"update": "events", "updates": [{"q": {"profileId": "p"}, "u": {}}]})
    assert untargeted("insert", {"insert": "events", "documents": [{"type": "x"}]})
    assert untargeted("aggregate", {"aggregate": "profiles", "pipeline": []})
    assert untargeted("find", {"find": "profiles", "filter": {"_id": {"$gt": "a"}}})
    joined_on_another_field = [
        {"$match": {"_id": {"$in": ["k"]}}},
        {"$lookup": {"from": "profiles", "localField": "x", "foreignField": "email", "as": "p"}},
    ]
    assert untargeted("aggregate", {"aggregate": "identity_keys", "pipeline": joined_on_another_field})
    union_without_key = [{"$match": {"_id": "k"}}, {"$unionWith": {"coll": "tombstones", "pipeline": []}}]
    assert untargeted("aggregate", {"aggregate": "identity_keys", "pipeline": union_without_key})
    assert not untargeted("find", {"find": "profiles", "filter": {"_id": {"$in": ["p", "q"]}}})
    assert not untargeted("find", {"find": "profiles", "filter": {"_id": "p", "version": 3}})
    assert not untargeted("find", {"find": "changes", "filter": {"_id": {"$gt": "0"}}})


def test_every_collection_the_gateway_creates_has_a_placement() -> None:
    assert set(sharded()) <= set(PLACEMENTS)
    assert all(placement.why for placement in PLACEMENTS.values())

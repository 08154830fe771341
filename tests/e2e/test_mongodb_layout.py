"""``profilegate serve`` in the MongoDB layout, as a gateway pointed at a MongoDB it did not start
runs: one collection per log, one partition; tracked, queried, subscribed to and erased over
HTTP and WebSocket.

The store is an embedded store this test starts on its own, which the gateway reaches through
``MONGODB_URI`` like any MongoDB; it has no change streams, so the follower falls back to
polling and counts the failed stream in ``/metrics``.
"""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from profilegate.embedded import EmbeddedStore
from profilegate.storage.store import open_client
from tests.e2e.server import ADMIN_KEY, HTTP_TIMEOUT_SECONDS, Server, StartServer
from tests.feed_client import FeedSocket

DATABASE = "shop"
METRICS_TOKEN = "e2e-metrics-token"
# The demo policy without its overrides (they name extensions this shop has not defined).
POLICY = json.loads((Path(__file__).parents[2] / "fixtures" / "tier_policy.json").read_text()) | {
    "overrides": []
}
REF = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}
PUBLISH = """
mutation($policy: TierPolicyInput!) {
  publishTierPolicy(policy: $policy, activate: true) { __typename }
}
"""
SAVE = """
mutation($input: SaveSegmentInput!) { saveSegment(input: $input) { __typename } }
"""
CHECKOUT = """
query($ref: ProfileRef!) {
  loyalty(ref: $ref) { tier { name } }
  profile(ref: $ref) { segments }
}
"""
ERASE = """
mutation($ref: ProfileRef!) {
  eraseProfile(ref: $ref, reason: "customer request") { __typename ... on ProfileErased { events } }
}
"""
EXPORT = """
query($ref: ProfileRef!) { exportProfile(ref: $ref) { __typename } }
"""


def order(at: datetime) -> dict[str, Any]:
    return {
        "id": "order-1",
        "type": "order_completed",
        "at": at.isoformat(),
        "channel": "web",
        "identity": REF["identity"],
        "properties": {
            "orderId": "o-1",
            "total": "300.00",
            "currency": "EUR",
            "items": [{"sku": "A1", "category": "coats", "price": "300.00", "quantity": 1}],
        },
    }


async def graphql(http: httpx.AsyncClient, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": document, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data = body["data"]
    assert isinstance(data, dict)
    return data


async def stored_layout(uri: str) -> tuple[dict[str, Any] | None, list[str]]:
    client = open_client(uri)
    try:
        database = client[DATABASE]
        return await database["meta"].find_one({"_id": "layout"}), await database.list_collection_names()
    finally:
        await client.close()


async def track_query_subscribe_erase(server: Server) -> None:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS) as http:
        assert (await graphql(http, PUBLISH, {"policy": POLICY}))["publishTierPolicy"]["__typename"] == (
            "TierPolicy"
        )
        segment = {"key": "buyers", "name": "Buyers", "rule": "orders(last 365d) >= 1"}
        assert (await graphql(http, SAVE, {"input": segment}))["saveSegment"]["__typename"] == "SegmentSaved"
        async with FeedSocket.open(server.url, key=ADMIN_KEY) as feed:
            await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
            # Past the policy's return lock, so the order counts towards the tier.
            tracked = await http.post(
                "/v1/track", json={"events": [order(datetime.now(UTC) - timedelta(days=60))]}
            )
            assert tracked.status_code == 200, tracked.text
            assert tracked.json()["accepted"] == 1, tracked.text
            change = await feed.change()
            assert change["kind"] == "EVENT_TRACKED"
            assert change["payload"]["eventId"] == "order-1"
        checkout = await graphql(http, CHECKOUT, {"ref": REF})
        assert checkout == {"loyalty": {"tier": {"name": "SILVER"}}, "profile": {"segments": ["buyers"]}}
        erased = (await graphql(http, ERASE, {"ref": REF}))["eraseProfile"]
        assert erased == {"__typename": "ProfileErased", "events": 1}
        gone = (await graphql(http, EXPORT, {"ref": REF}))["exportProfile"]
        assert gone["__typename"] == "ProfileNotFoundError"
        metrics = (await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})).text
        assert 'profilegate_feed_change_stream_restarts_total{reason="refused"}' in metrics, metrics


def test_serve_in_the_mongodb_layout_tracks_queries_subscribes_and_erases(
    start_server: StartServer, tmp_path: Path
) -> None:
    with EmbeddedStore(data_dir=tmp_path / "store") as store:
        assert store.uri is not None
        server = start_server(
            tmp_path / "unused",
            env={
                "MONGODB_URI": store.uri,
                "PROFILEGATE_DATABASE": DATABASE,
                "PROFILEGATE_METRICS_TOKEN": METRICS_TOKEN,
                "PROFILEGATE_FEED_POLL_SECONDS": "0.2",
            },
        )
        server.wait_ready()
        asyncio.run(track_query_subscribe_erase(server))
        layout, collections = asyncio.run(stored_layout(store.uri))
        assert server.stop() == 0, server.logs()
    assert layout is not None
    assert (layout["partitions"], layout.get("eventSegmentSize")) == (1, None)
    split = [name for name in collections if re.search(r"_[sp]\d+$", name)]  # events_s000000, profiles_p0
    assert split == [], collections
    assert {"events", "changes"} <= set(collections), collections
    assert not (tmp_path / "unused").exists(), "the gateway started no store of its own"

"""Events nested or sized past the limits: that event is rejected naming the limit, the rest applied."""

from typing import Any

from profilegate.storage.store import Repositories
from tests.gateway import FrozenClock, GatewayClient
from tests.shopper_proofs import proof_for

TRACK = """
mutation Track($events: [EventInput!]!) {
  track(events: $events) { accepted duplicates rejected results { id status reason } }
}
"""
METRICS = """
query($ref: ProfileRef!) { profile(ref: $ref) { id metrics { events(type: PAGE_VIEW) } } }
"""
ANN = {"type": "EMAIL", "value": "ann@example.com"}


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` objects deep: ``{"n": {"n": ... {}}}``."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"n": value}
    return value


def page_view(event_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "page_view",
        "at": "2026-11-20T09:00:00Z",
        "channel": "web",
        "identity": ANN,
        "properties": {"url": "https://shop.example/", **properties},
    }


def graphql_custom(event_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": "2026-11-20T09:00:00Z",
        "channel": "WEB",
        "ref": {"identity": ANN},
        "payload": {"custom": {"name": "quiz_answered", "properties": properties}},
    }


async def logged_ids(repos: Repositories) -> list[str]:
    profile = await repos.identity_keys.owner("email:ann@example.com")
    assert profile is not None
    return sorted(document["_id"] for document in await repos.events.for_profiles([profile]))


async def test_a_storefront_batch_with_one_event_120_levels_deep_applies_the_other_two(
    gateway: GatewayClient, repos: Repositories, clock: FrozenClock
) -> None:
    key = await gateway.create_storefront_key("shop-web")
    batch = {"events": [page_view("e1"), page_view("e2", quiz=nested(120)), page_view("e3")]}
    headers = {"authorization": f"Bearer {key.token}", **proof_for(key, "EMAIL", ANN["value"], clock.now)}

    response = await gateway.http.post("/v1/track", json=batch, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    rejected = body["results"][1]
    assert rejected["status"] == "rejected"
    assert rejected["reason"].startswith("properties.quiz" + ".n" * 9 + ":")
    assert "nests deeper than the limit of 10 levels" in rejected["reason"]
    assert await logged_ids(repos) == ["e1", "e3"]
    metrics = await gateway.execute(METRICS, {"ref": {"identity": ANN}})
    assert metrics.data["profile"]["metrics"]["events"] == 2


async def test_the_track_mutation_rejects_the_deep_event_alone(
    gateway: GatewayClient, repos: Repositories
) -> None:
    events = [
        graphql_custom("g1", {"answer": 1}),
        graphql_custom("g2", {"answer": nested(120)}),
        graphql_custom("g3", {"answer": 3}),
    ]

    result = (await gateway.execute(TRACK, {"events": events})).data["track"]

    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert [r["status"] for r in result["results"]] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert "nests deeper than the limit of 10 levels" in result["results"][1]["reason"]
    assert await logged_ids(repos) == ["g1", "g3"]


async def test_field_names_mongodb_refuses_reject_only_their_event(
    gateway: GatewayClient, repos: Repositories
) -> None:
    batch = {
        "events": [
            page_view("k1", **{"$where": "1"}),
            page_view("k2", meta={"a.b": 1}),
            page_view("k3", meta={"nul\u0000": 1}),
            page_view("k4", meta={"fine": [1, {"ok": True}]}),
        ]
    }

    response = await gateway.http.post(
        "/v1/track", json=batch, headers={"authorization": "Bearer test-admin-key"}
    )

    body = response.json()
    assert response.status_code == 200
    assert [r["status"] for r in body["results"]] == ["rejected", "rejected", "rejected", "accepted"]
    assert [r["reason"].split(":")[0] for r in body["results"][:3]] == [
        "properties.$where",
        "properties.meta.a.b",
        "properties.meta.nul\\u0000",
    ]
    assert await logged_ids(repos) == ["k4"]


async def test_an_event_over_the_byte_limit_names_it(gateway: GatewayClient) -> None:
    batch = {"events": [page_view("b1", notes=["x" * 8000] * 5), page_view("b2")]}

    response = await gateway.http.post(
        "/v1/track", json=batch, headers={"authorization": "Bearer test-admin-key"}
    )

    results = response.json()["results"]
    assert results[0]["reason"].startswith("properties: take ")
    assert "more than the limit of 32768" in results[0]["reason"]
    assert results[1]["status"] == "accepted"


async def test_a_json_batch_over_500_events_is_refused_whole_with_413_naming_the_limit(
    gateway: GatewayClient, repos: Repositories
) -> None:
    batch = {"events": [page_view(f"big-{n}") for n in range(501)]}

    response = await gateway.http.post(
        "/v1/track", json=batch, headers={"authorization": "Bearer test-admin-key"}
    )

    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["message"] == (
        "events: the batch holds 501 events, more than the limit of 500 events per batch; "
        "nothing was applied (send at most 500 per request, or NDJSON)"
    )
    assert error["extensions"] == {"code": "BATCH_TOO_LARGE", "field": "events", "limit": 500}
    assert await repos.identity_keys.owner("email:ann@example.com") is None


async def test_the_track_mutation_over_500_events_is_one_error_naming_the_limit(
    gateway: GatewayClient, repos: Repositories
) -> None:
    events = [graphql_custom(f"big-{n}", {"answer": n}) for n in range(501)]

    result = await gateway.execute(TRACK, {"events": events})

    assert result.body["data"] is None
    [error] = result.body["errors"]
    assert error["message"] == (
        "events: the batch holds 501 events, more than the limit of 500 events per batch; nothing was applied"
    )
    assert error["extensions"] == {"code": "BATCH_TOO_LARGE", "field": "events", "limit": 500}
    assert await repos.identity_keys.owner("email:ann@example.com") is None

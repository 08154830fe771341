"""Tracking through GraphQL: typed payloads, per-event outcomes, idempotent replays."""

from typing import Any

import orjson

from tests.gateway import FrozenClock, GatewayClient

TRACK = """
mutation Track($events: [EventInput!]!) {
  track(events: $events) { accepted duplicates rejected results { id status reason } }
}
"""
ANN = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}


def order(
    event_id: str, order_id: str, total: str = "99.50", at: str = "2026-11-20T09:00:00Z"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": at,
        "channel": "WEB",
        "ref": ANN,
        "payload": {
            "orderCompleted": {
                "orderId": order_id,
                "total": total,
                "currency": "EUR",
                "items": [{"sku": "A1", "category": "shoes", "price": total, "quantity": 1}],
            }
        },
    }


async def test_a_replayed_batch_is_all_duplicates(gateway: GatewayClient, clock: FrozenClock) -> None:
    events = [order("e1", "o1"), order("e2", "o2", "10.00")]
    first = (await gateway.execute(TRACK, {"events": events})).data["track"]
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (2, 0, 0)
    again = (await gateway.execute(TRACK, {"events": events})).data["track"]
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 2, 0)
    assert [r["status"] for r in again["results"]] == ["DUPLICATE", "DUPLICATE"]


async def test_bad_events_are_rejected_and_the_rest_applied(gateway: GatewayClient) -> None:
    bad_total = order("e3", "o3", "99.50")
    bad_total["payload"]["orderCompleted"]["total"] = "5.00"
    future = order("e4", "o4", at="2030-01-01T00:00:00Z")
    result = (await gateway.execute(TRACK, {"events": [order("e1", "o1"), bad_total, future]})).data["track"]
    assert (result["accepted"], result["rejected"]) == (1, 2)
    reasons = [r["reason"] for r in result["results"]]
    assert reasons[0] is None
    assert reasons[1].startswith("properties.total:")
    assert reasons[2].startswith("at:")


CONTRACT = {
    "events": [
        {
            "id": "evt-1",
            "type": "order_completed",
            "at": "2026-11-20T10:00:00Z",
            "channel": "web",
            "identity": {"type": "EMAIL", "value": "ann@example.com"},
            "properties": {
                "orderId": "o-1",
                "total": "99.50",
                "currency": "EUR",
                "items": [{"sku": "A1", "category": "shoes", "price": "99.50", "quantity": 1}],
            },
        },
        {
            "id": "evt-2",
            "type": "order_returned",
            "at": "2026-11-20T09:30:00Z",
            "channel": "web",
            "identity": {"type": "EMAIL", "value": "ann@example.com"},
            "properties": {"orderId": "o-1", "amount": "20.00"},
        },
        {
            "id": "evt-3",
            "type": "page_view",
            "at": "2026-11-20T09:00:00Z",
            "channel": "web",
            "anonymousId": "a-1",
        },
    ]
}


async def test_v1_track_takes_the_public_json_contract(gateway: GatewayClient) -> None:
    key = await gateway.create_key("INGEST", "shop-backend")
    response = await gateway.http.post("/v1/track", json=CONTRACT, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": 0,
        "results": [
            {"id": "evt-1", "status": "accepted", "reason": None},
            {"id": "evt-2", "status": "accepted", "reason": None},
            {"id": "evt-3", "status": "accepted", "reason": None},
        ],
    }


async def test_v1_track_takes_ndjson_and_rejects_bad_lines_alone(gateway: GatewayClient) -> None:
    lines = [orjson.dumps(CONTRACT["events"][0]), b"{not json", orjson.dumps(CONTRACT["events"][2])]
    response = await gateway.http.post(
        "/v1/track",
        content=b"\n".join(lines) + b"\n",
        headers={"authorization": "Bearer test-admin-key", "content-type": "application/x-ndjson"},
    )
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1]["reason"].startswith("line 2: not valid JSON")


async def test_v1_track_needs_a_tracking_role(gateway: GatewayClient) -> None:
    partner = await gateway.create_key("PARTNER", "p")
    refused = await gateway.http.post(
        "/v1/track", json=CONTRACT, headers={"authorization": f"Bearer {partner}"}
    )
    assert refused.status_code == 403
    assert (await gateway.http.post("/v1/track", json=CONTRACT)).status_code == 401
    malformed = await gateway.http.post(
        "/v1/track", content=b"[1,", headers={"authorization": "Bearer test-admin-key"}
    )
    assert malformed.status_code == 400

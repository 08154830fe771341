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
            "at": "2026-11-20T09:10:00Z",
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


METRICS = """
query Metrics($ref: ProfileRef!) {
  profile(ref: $ref) {
    metrics {
      orders week: orders(days: 7)
      grossSpend { amount currency } netSpend { amount currency } netWeek: netSpend(days: 7) { amount }
      averageOrderValue { amount } returnRate conversionRate
      views: events(type: PRODUCT_VIEW) viewsToday: events(type: PRODUCT_VIEW, days: 1)
      firstSeen lastSeen lastOrderAt
      channels { channel count }
      categoryAffinities(first: 2) { category weight share }
    }
  }
}
"""


def event(event_id: str, at: str, payload: dict[str, Any], channel: str = "WEB") -> dict[str, Any]:
    return {"id": event_id, "at": at, "channel": channel, "ref": ANN, "payload": payload}


async def test_metrics_add_up_the_events(gateway: GatewayClient) -> None:
    events = [
        event("v1", "2026-11-01T08:00:00Z", {"productView": {"sku": "A1", "category": "shoes"}}, "APP"),
        event("v2", "2026-11-20T08:00:00Z", {"productView": {"sku": "B1", "category": "bags"}}),
        event("c1", "2026-11-01T08:05:00Z", {"checkoutStarted": {}}),
        event("c2", "2026-11-20T08:05:00Z", {"checkoutStarted": {}}),
        order("o1", "order-1", "100.00", at="2026-11-01T08:10:00Z"),
        order("o2", "order-2", "50.00", at="2026-11-19T08:10:00Z"),
        event("r1", "2026-11-20T09:00:00Z", {"orderReturned": {"orderId": "order-2", "amount": "20.00"}}),
    ]
    result = (await gateway.execute(TRACK, {"events": events})).data["track"]
    assert result["accepted"] == 7
    metrics = (await gateway.execute(METRICS, {"ref": ANN})).data["profile"]["metrics"]
    assert metrics == {
        "orders": 2,
        "week": 1,
        "grossSpend": {"amount": "150.00", "currency": "EUR"},
        "netSpend": {"amount": "130.00", "currency": "EUR"},
        "netWeek": {"amount": "30.00"},
        "averageOrderValue": {"amount": "65.00"},
        "returnRate": 0.5,
        "conversionRate": 1.0,
        "views": 2,
        "viewsToday": 1,
        "firstSeen": "2026-11-01T08:00:00+00:00",
        "lastSeen": "2026-11-20T09:00:00+00:00",
        "lastOrderAt": "2026-11-19T08:10:00+00:00",
        "channels": [{"channel": "APP", "count": 1}, {"channel": "WEB", "count": 6}],
        "categoryAffinities": [
            {"category": "shoes", "weight": 3, "share": 0.75},
            {"category": "bags", "weight": 1, "share": 0.25},
        ],
    }


async def test_a_cancellation_before_its_order_is_refused_and_one_after_nets_it_out(
    gateway: GatewayClient,
) -> None:
    cancel = event("x1", "2026-11-20T09:00:00Z", {"orderCancelled": {"orderId": "order-9"}})
    early = (await gateway.execute(TRACK, {"events": [cancel]})).data["track"]
    assert early["results"] == [
        {
            "id": "x1",
            "status": "REJECTED",
            "reason": "properties.orderId: no order order-9 is known for this customer: "
            "a return or cancellation follows its order_completed",
        }
    ]
    await gateway.execute(TRACK, {"events": [order("o9", "order-9", "40.00", at="2026-11-20T08:00:00Z")]})
    metrics = (await gateway.execute(METRICS, {"ref": ANN})).data["profile"]["metrics"]
    assert (metrics["grossSpend"]["amount"], metrics["netSpend"]["amount"]) == ("40.00", "40.00")
    again = (await gateway.execute(TRACK, {"events": [cancel]})).data["track"]
    assert again["accepted"] == 1
    metrics = (await gateway.execute(METRICS, {"ref": ANN})).data["profile"]["metrics"]
    assert metrics["netSpend"]["amount"] == "0.00"
    assert metrics["averageOrderValue"] is None


async def test_a_window_longer_than_the_days_kept_is_refused(gateway: GatewayClient) -> None:
    await gateway.execute(TRACK, {"events": [order("o1", "order-1")]})
    result = await gateway.execute(
        "query($ref: ProfileRef!) { profile(ref: $ref) { metrics { orders(days: 5000) } } }", {"ref": ANN}
    )
    assert result.body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "days"}

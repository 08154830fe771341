"""Tracking through GraphQL: typed payloads, per-event outcomes, idempotent replays."""

from typing import Any

from tests.gateway import FrozenClock, GatewayClient

TRACK = """
mutation Track($events: [EventInput!]!) {
  track(events: $events) { accepted duplicates rejected results { id status reason } }
}
"""
ANN = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}


def order(event_id: str, order_id: str, total: str = "99.50", at: str = "2026-11-20T09:00:00Z") -> dict[str, Any]:
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

"""How a profile's aggregates sit in its document.

Keys that come from callers (order ids, categories) are kept in arrays of pairs, never as
field names, since they may hold '.' or '$'. Nothing here is indexed, so arrays cost nothing.
"""

from typing import Any

from profilegate.domain.aggregates import Aggregates, DayBucket, OrderEntry
from profilegate.storage.documents import Document


def aggregates_to_document(aggregates: Aggregates) -> Document:
    return {
        "counts": aggregates.counts,
        "channels": aggregates.channels,
        "categories": [[name, count] for name, count in sorted(aggregates.categories.items())],
        "orders": aggregates.orders,
        "gross": aggregates.gross,
        "returned": aggregates.returned,
        "cancelled": aggregates.cancelled,
        "cancelledOrders": aggregates.cancelled_orders,
        "returnedOrders": aggregates.returned_orders,
        "firstSeen": aggregates.first_seen,
        "lastSeen": aggregates.last_seen,
        "lastOrderAt": aggregates.last_order_at,
        "orderIndex": [
            {"id": key, "total": e.total, "day": e.day, "cancelled": e.cancelled, "returned": e.returned}
            for key, e in aggregates.order_index.items()
        ],
    }


def daily_to_document(aggregates: Aggregates) -> Document:
    return {
        day: {"c": b.counts, "o": b.orders, "g": b.gross, "r": b.returned, "x": b.cancelled}
        for day, b in aggregates.daily.items()
    }


def aggregates_from_document(document: Document) -> Aggregates:
    stored: dict[str, Any] = document.get("aggregates") or {}
    daily: dict[str, Any] = document.get("daily") or {}
    return Aggregates(
        counts=stored.get("counts", {}),
        channels=stored.get("channels", {}),
        categories=dict(stored.get("categories", [])),
        orders=stored.get("orders", 0),
        gross=stored.get("gross", 0),
        returned=stored.get("returned", 0),
        cancelled=stored.get("cancelled", 0),
        cancelled_orders=stored.get("cancelledOrders", 0),
        returned_orders=stored.get("returnedOrders", 0),
        first_seen=stored.get("firstSeen"),
        last_seen=stored.get("lastSeen"),
        last_order_at=stored.get("lastOrderAt"),
        order_index={
            e["id"]: OrderEntry(
                total=e["total"], day=e["day"], cancelled=e["cancelled"], returned=e["returned"]
            )
            for e in stored.get("orderIndex", [])
        },
        daily={
            day: DayBucket(counts=b["c"], orders=b["o"], gross=b["g"], returned=b["r"], cancelled=b["x"])
            for day, b in daily.items()
        },
        recent_event_ids=tuple(document.get("recentEventIds", ())),
    )

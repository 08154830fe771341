"""How a profile's aggregates sit in its document.

Keys that come from callers (categories) are kept in arrays of pairs, never as field names,
since they may hold '.' or '$'; order ids are kept as digests in a packed binary index.
"""

import struct
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from profilegate.domain.aggregates import Aggregates, DayBucket, OrderEntry
from profilegate.domain.events import EventType
from profilegate.domain.tiers import day_number, from_day_number
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
        "orderEntries": pack_order_index(aggregates.order_index),
        "channelLinks": aggregates.channel_links,
        "couponCampaigns": [[name, day] for name, day in sorted(aggregates.coupon_campaigns.items())],
    }


# Per-day counts use two-letter codes: a year of buckets is most of a profile's size.
_CODES = {
    EventType.PAGE_VIEW: "pv",
    EventType.PRODUCT_VIEW: "pr",
    EventType.ADD_TO_CART: "ac",
    EventType.CHECKOUT_STARTED: "cs",
    EventType.ORDER_COMPLETED: "oc",
    EventType.ORDER_RETURNED: "or",
    EventType.ORDER_CANCELLED: "ox",
    EventType.COUPON_REDEEMED: "cr",
    EventType.NEWSLETTER_SUBSCRIBED: "ns",
    EventType.EMAIL_OPENED: "eo",
    EventType.EMAIL_CLICKED: "ec",
    EventType.STORE_VISIT: "sv",
    EventType.CALLCENTER_CONTACT: "cc",
    EventType.CUSTOM: "cu",
}
_TYPES = {code: kind.value for kind, code in _CODES.items()}
_DIGEST_BYTES = 6


def daily_to_document(aggregates: Aggregates) -> Document:
    return {day: day_document(bucket) for day, bucket in aggregates.daily.items()}


def day_document(bucket: DayBucket) -> Document:
    """One UTC day's bucket; zero sums are left out."""
    document: Document = {"c": {_CODES[EventType(kind)]: n for kind, n in bucket.counts.items()}}
    for key, value in (
        ("o", bucket.orders),
        ("g", bucket.gross),
        ("r", bucket.returned),
        ("x", bucket.cancelled),
        ("k", bucket.order_returns),
        ("cp", bucket.coupons),
    ):
        if value:
            document[key] = value
    return document


def recent_to_document(aggregates: Aggregates) -> bytes:
    return b"".join(bytes.fromhex(digest) for digest in aggregates.recent_event_ids)


def _recent_from_document(stored: object) -> tuple[str, ...]:
    if not isinstance(stored, bytes):
        return ()
    return tuple(
        stored[start : start + _DIGEST_BYTES].hex() for start in range(0, len(stored), _DIGEST_BYTES)
    )


def _day_from_document(document: Document) -> DayBucket:
    return DayBucket(
        counts={_TYPES[code]: n for code, n in document.get("c", {}).items()},
        orders=document.get("o", 0),
        gross=document.get("g", 0),
        returned=document.get("r", 0),
        cancelled=document.get("x", 0),
        order_returns=document.get("k", 0),
        coupons=document.get("cp", 0),
    )


# One order: its key's 8 bytes, total, day number, flags, money returned, the instants of the
# order and of its latest return (milliseconds since 1970, as BSON keeps the event log's
# ``at``, so a profile rebuilt from the log holds the same), then the id of the event that
# counted it (a length byte and at most 128 ASCII characters). Packed into one binary field,
# the index costs the embedded store one element to read and write, not eight per order (it
# decodes every element of a document on each access). ``orderIndex`` is the older layout
# (the first five fields), read until the profile is next written.
_LEGACY_RECORD = struct.Struct("<8sqiBq")
_ORDER_RECORD = struct.Struct("<8sqiBqqqB")
_CANCELLED, _HAS_TOTAL, _HAS_DAY, _HAS_AT, _HAS_RETURNED_AT = 1, 2, 4, 8, 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pack_order_index(index: Mapping[str, OrderEntry]) -> bytes:
    return b"".join(_order_record(key, entry) for key, entry in index.items())


def _order_record(key: str, entry: OrderEntry) -> bytes:
    flags = (_CANCELLED if entry.cancelled else 0) | (_HAS_TOTAL if entry.total is not None else 0)
    flags |= (_HAS_DAY if entry.day is not None else 0) | (_HAS_AT if entry.at is not None else 0)
    flags |= _HAS_RETURNED_AT if entry.returned_at is not None else 0
    day = 0 if entry.day is None else day_number(date.fromisoformat(entry.day))
    event_id = (entry.event_id or "").encode()
    fixed = _ORDER_RECORD.pack(
        bytes.fromhex(key),
        entry.total or 0,
        day,
        flags,
        entry.returned,
        _millis(entry.at),
        _millis(entry.returned_at),
        len(event_id),
    )
    return fixed + event_id


def unpack_order_index(packed: bytes) -> dict[str, OrderEntry]:
    index: dict[str, OrderEntry] = {}
    offset = 0
    while offset < len(packed):
        key, total, day, flags, returned, at, returned_at, length = _ORDER_RECORD.unpack_from(packed, offset)
        offset += _ORDER_RECORD.size
        event_id = packed[offset : offset + length].decode()
        offset += length
        index[key.hex()] = OrderEntry(
            total=total if flags & _HAS_TOTAL else None,
            day=from_day_number(day).isoformat() if flags & _HAS_DAY else None,
            cancelled=bool(flags & _CANCELLED),
            returned=returned,
            at=_instant(at) if flags & _HAS_AT else None,
            returned_at=_instant(returned_at) if flags & _HAS_RETURNED_AT else None,
            event_id=event_id or None,
        )
    return index


def unpack_legacy_order_index(packed: bytes) -> dict[str, OrderEntry]:
    return {
        key.hex(): OrderEntry(
            total=total if flags & _HAS_TOTAL else None,
            day=from_day_number(day).isoformat() if flags & _HAS_DAY else None,
            cancelled=bool(flags & _CANCELLED),
            returned=returned,
        )
        for key, total, day, flags, returned in _LEGACY_RECORD.iter_unpack(packed)
    }


def _millis(moment: datetime | None) -> int:
    return 0 if moment is None else (moment - _EPOCH) // timedelta(milliseconds=1)


def _instant(millis: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=millis)


_SPEND_RECORD = struct.Struct("<iq")


def pack_spend(spend: Mapping[int, int]) -> bytes:
    """Net spend per day as 12-byte records (day number, minor units), in day order."""
    return b"".join(_SPEND_RECORD.pack(day, net) for day, net in sorted(spend.items()))


def unpack_spend(packed: bytes) -> dict[int, int]:
    return dict(_SPEND_RECORD.iter_unpack(packed))


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
        order_index=_order_index_from_document(stored),
        daily={day: _day_from_document(bucket) for day, bucket in daily.items()},
        recent_event_ids=_recent_from_document(document.get("recentEventIds")),
        channel_links=stored.get("channelLinks", {}),
        coupon_campaigns=dict(stored.get("couponCampaigns", [])),
    )


def _order_index_from_document(stored: Document) -> dict[str, OrderEntry]:
    if "orderEntries" in stored:
        return unpack_order_index(stored["orderEntries"])
    return unpack_legacy_order_index(stored.get("orderIndex") or b"")

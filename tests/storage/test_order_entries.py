"""The order index in the profile document: packed entries with the event that counted each
order, read back as written; the older layout without them still read."""

import struct
from datetime import UTC, datetime

from profilegate.domain.aggregates import Aggregates, order_key
from profilegate.domain.events import MAX_EVENT_ID_LENGTH
from profilegate.domain.orders import OrderEntry
from profilegate.storage.aggregates import aggregates_from_document, aggregates_to_document

AT = datetime(2026, 11, 18, 10, 0, 0, 123000, tzinfo=UTC)
ENTRIES = {
    order_key("D-5001"): OrderEntry(
        total=13976, day="2026-11-18", at=AT, event_id="d1-order-5001", returned=1990, returned_at=AT
    ),
    order_key("D-5002"): OrderEntry(
        total=0, day="2026-11-19", at=AT, event_id="~" * MAX_EVENT_ID_LENGTH, cancelled=True
    ),
    order_key("legacy"): OrderEntry(returned=500),
}


def test_order_entries_are_read_back_as_written() -> None:
    document = {"aggregates": aggregates_to_document(Aggregates(order_index=ENTRIES))}

    assert aggregates_from_document(document).order_index == ENTRIES
    assert "orderIndex" not in document["aggregates"]


def test_the_older_layout_is_still_read() -> None:
    record = struct.pack("<8sqiBq", bytes.fromhex(order_key("D-5001")), 13976, 20775, 2 | 4, 1990)
    document = {"aggregates": {"orderIndex": record}}

    [entry] = aggregates_from_document(document).order_index.values()

    assert entry == OrderEntry(total=13976, day="2026-11-18", returned=1990)

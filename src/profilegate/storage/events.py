"""The ``events`` log: raw, append-only, ``_id`` is the event's id.

On real MongoDB it is one collection. On the embedded store, where creating a document
costs O(collection size) (DESIGN sec. 2), it is rolled over into segments of a fixed number
of documents (``events_s000000``, ``events_s000001``, ...), so appending stays flat however
long the log grows. A slot counter hands out positions; a replay lands in a fresh slot,
so a duplicate may be logged twice across segments: readers dedupe by ``_id``, and the
profile's guard on recently applied event ids keeps it from being counted twice.

An event id names one event in the whole shop. In one collection a second use of an id for
another profile is found exactly (the ``_id`` index refuses it); across segments it is found
only within the segment the new event lands in, so an id reused for another person more than
a segment's worth of events later is taken as that person's event.
"""

from collections.abc import AsyncIterator, Iterable
from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import BulkWriteError

from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.refs import ProfileRef
from profilegate.storage.documents import Collection, Database, Document
from profilegate.storage.places import handed_out, reserve

DUPLICATE_KEY = 11000
SLOT_COUNTER = "events"


class EventLog:
    def __init__(self, database: Database, segment_size: int | None, retention_seconds: int) -> None:
        self._database = database
        self._segment_size = segment_size
        self._indexes = [
            IndexModel([("profileId", ASCENDING)], name="profileId"),
            IndexModel([("receivedAt", ASCENDING)], name="retention", expireAfterSeconds=retention_seconds),
        ]
        self._indexed: set[str] = set()

    async def append(
        self, entries: Iterable[tuple[TrackedEvent, str]], received_at: datetime
    ) -> dict[str, str]:
        """Log events, each with the profile it is for; one already in its segment counts as logged.

        An event id names one event in the whole shop. Returns, for each id found logged for
        another profile than the one given, that profile: the caller decides whether it is the
        same person (a merge since) or a second use of the id (a duplicate).
        """
        documents = [event_document(event, profile_id, received_at) for event, profile_id in entries]
        taken: dict[str, str] = {}
        if not documents:
            return taken
        for collection, chunk in await self._placed(documents):
            await self._ensure_indexes(collection)
            try:
                await collection.insert_many(chunk, ordered=False)
            except BulkWriteError as error:
                errors = error.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                taken.update(await _logged_for_others(collection, [chunk[e["index"]] for e in errors]))
        return taken

    async def for_profiles(self, profile_ids: Iterable[str]) -> list[Document]:
        """Every logged event of these profiles, each id once, oldest first."""
        wanted = list(profile_ids)
        seen: dict[str, Document] = {}
        for collection in await self.segments():
            async for document in collection.find({"profileId": {"$in": wanted}}):
                seen.setdefault(document["_id"], document)
        return sorted(seen.values(), key=lambda d: (d["at"], d["_id"]))

    async def delete_for_profiles(self, profile_ids: Iterable[str]) -> int:
        """Delete every logged event of these profiles, in every segment; return how many."""
        wanted = list(profile_ids)
        deleted = 0
        for collection in await self.segments():
            deleted += (await collection.delete_many({"profileId": {"$in": wanted}})).deleted_count
        return deleted

    async def scan(self) -> AsyncIterator[Document]:
        """Every logged document, segment by segment (duplicates included)."""
        for collection in await self.segments():
            async for document in collection.find({}):
                yield document

    async def segments(self) -> list[Collection]:
        if self._segment_size is None:
            return [self._database["events"]]
        used = await handed_out(self._database, SLOT_COUNTER)
        count = (used + self._segment_size - 1) // self._segment_size
        return [self._segment(index) for index in range(count)]

    async def _placed(self, documents: list[Document]) -> list[tuple[Collection, list[Document]]]:
        if self._segment_size is None:
            return [(self._database["events"], documents)]
        first = await reserve(self._database, SLOT_COUNTER, len(documents)) - len(documents)
        placed: dict[int, list[Document]] = {}
        for offset, document in enumerate(documents):
            placed.setdefault((first + offset) // self._segment_size, []).append(document)
        return [(self._segment(index), chunk) for index, chunk in sorted(placed.items())]

    def _segment(self, index: int) -> Collection:
        return self._database[f"events_s{index:06d}"]

    async def _ensure_indexes(self, collection: Collection) -> None:
        if collection.name not in self._indexed:
            await collection.create_indexes(self._indexes)
            self._indexed.add(collection.name)


async def _logged_for_others(collection: Collection, clashing: list[Document]) -> dict[str, str]:
    """Of these documents, whose ``_id`` is already logged, those logged for another profile."""
    wanted = {document["_id"]: document["profileId"] for document in clashing}
    cursor = collection.find({"_id": {"$in": list(wanted)}}, {"profileId": 1})
    return {
        document["_id"]: document["profileId"]
        async for document in cursor
        if document["profileId"] != wanted[document["_id"]]
    }


def event_document(event: TrackedEvent, profile_id: str, received_at: datetime) -> Document:
    return {
        "_id": event.id,
        "profileId": profile_id,
        "type": event.type.value,
        "at": event.at,
        "channel": event.channel.value,
        "properties": event.properties,
        "amount": event.amount,
        "orderId": event.order_id,
        "categories": [list(pair) for pair in event.categories],
        "name": event.name,
        "receivedAt": received_at,
    }


def event_from_document(document: Document) -> TrackedEvent:
    """A logged event as it was applied, addressed to the profile it was applied to."""
    return TrackedEvent(
        id=document["_id"],
        type=EventType(document["type"]),
        at=document["at"],
        channel=Channel(document["channel"]),
        target=ProfileRef(id=document["profileId"]),
        amount=document.get("amount", 0),
        order_id=document.get("orderId"),
        categories=tuple((name, weight) for name, weight in document.get("categories", [])),
        name=document.get("name"),
        properties=document.get("properties", {}),
    )

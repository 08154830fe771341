"""The ``events`` log: raw, append-only, ``_id`` is the event's id.

Its collections come from the layout (``storage.layout``): one collection with a TTL index
on ``receivedAt`` on MongoDB; segments of a fixed number of slots on the embedded store.
Readers dedupe by ``_id`` all the same (logs written before claims were recorded may hold an
id twice).

An event is acknowledged only once its log write is: a write concern error (on a replica
set, e.g. ``w: majority`` not reached in time) fails the append like any write error but a
duplicate id.

An event id names one event in the whole shop, and a second use is found exactly in both
layouts. In one collection the ``_id`` index refuses it. Across segments, the reservation of
the places records each id with (a digest of) the profile it is for, on the log's counter
document, in the same command (``places.reserve_claimed``): a reuse learns where its first use
went without reading a segment, and only then reads that one (a lookup by ``_id`` that misses
costs O(segment size) on the embedded store, and there are ever more segments).

``via`` holds how the event named its profile (``ProfileRef.key``) when that is not the id it
was logged under: an identity, or the id of a profile merged away. An unmerge gives the events
that came in through the loser's identities back to it (``reattribute``).
"""

from collections.abc import AsyncIterator, Iterable
from datetime import datetime

from pymongo.errors import BulkWriteError
from pymongo.write_concern import WriteConcern

from profilegate.domain.events import Channel, EventType, RedeemedCoupon, TrackedEvent
from profilegate.domain.refs import ProfileRef, id_key
from profilegate.storage.bulk_errors import only_duplicates
from profilegate.storage.command_limits import chunked
from profilegate.storage.documents import Collection, Database, Document
from profilegate.storage.indexes import LOG_INDEXES, RETENTION_FIELDS
from profilegate.storage.layout import AppendLog, Claimed, Concerns, Layout, Retention
from profilegate.storage.places import owner_digest

LOG_NAME = "events"
# The owner ``EventLog.append`` names for an id claimed for another profile that is not logged.
UNLOGGED_CLAIM = ""


def event_log(layout: Layout, database: Database, retention_seconds: int, write: WriteConcern) -> "EventLog":
    """The event log in ``layout``; ``write``: the write concern an acknowledged event needs."""
    return EventLog(
        layout.log(
            database,
            LOG_NAME,
            Retention(RETENTION_FIELDS[LOG_NAME], retention_seconds),
            indexes=LOG_INDEXES[LOG_NAME],
            concerns=Concerns(write=write),
        )
    )


class EventLog:
    def __init__(self, log: AppendLog) -> None:
        self._log = log

    async def append(
        self, entries: Iterable[tuple[TrackedEvent, str]], received_at: datetime
    ) -> dict[str, str]:
        """Log events, each with the profile it is for; one already logged counts as logged.

        An event id names one event in the whole shop. Returns, for each id found logged for
        another profile than the one given, that profile: the caller decides whether it is the
        same person (a merge since) or a second use of the id (a duplicate). An id claimed
        before for another profile whose event is not in the log (its write died, or it was
        erased) is returned with ``UNLOGGED_CLAIM``: the first claim keeps the id.
        """
        documents = [event_document(event, profile_id, received_at) for event, profile_id in entries]
        taken: dict[str, str] = {}
        if not documents:
            return taken
        claims = [(document["_id"], document["profileId"]) for document in documents]
        placed, elsewhere = await self._log.slotted_claimed(claims, documents)
        settled = await _claimed_before(elsewhere, dict(claims), taken)
        for collection, chunk in placed:
            await _insert(collection, [d for d in chunk if d["_id"] not in settled], taken)
        return taken

    async def for_profiles(self, profile_ids: Iterable[str]) -> list[Document]:
        """Every logged event of these profiles, each id once, oldest first."""
        wanted = list(profile_ids)
        seen: dict[str, Document] = {}
        for collection in await self._log.stored():
            async for document in collection.find({"profileId": {"$in": wanted}}):
                seen.setdefault(document["_id"], document)
        return sorted(seen.values(), key=lambda d: (d["at"], d["_id"]))

    async def reattribute(self, from_ids: Iterable[str], via: Iterable[str], to: str) -> int:
        """Log under ``to`` every event of ``from_ids`` that named its profile by one of ``via``
        (``ProfileRef.key``s), in every segment; how many were moved. Idempotent."""
        wanted = {"profileId": {"$in": list(from_ids)}, "via": {"$in": list(via)}}
        moved = 0
        for collection in await self._log.stored():
            moved += (await collection.update_many(wanted, {"$set": {"profileId": to}})).modified_count
        return moved

    async def delete_for_profiles(self, profile_ids: Iterable[str]) -> int:
        """Delete every logged event of these profiles, in every segment; return how many."""
        wanted = list(profile_ids)
        deleted = 0
        for collection in await self._log.stored():
            deleted += (await collection.delete_many({"profileId": {"$in": wanted}})).deleted_count
        return deleted

    async def scan(self) -> AsyncIterator[Document]:
        """Every logged document, segment by segment (duplicates included)."""
        for collection in await self._log.stored():
            async for document in collection.find({}):
                yield document

    async def received_since(self, moment: datetime) -> AsyncIterator[Document]:
        """Every logged document received at or after ``moment`` (duplicates included): in the
        MongoDB layout a range of the TTL index on ``receivedAt``; on the embedded store every
        segment is read (a segment's places are handed out in order, its receipts are not)."""
        for collection in await self._log.stored():
            async for document in collection.find({"receivedAt": {"$gte": moment}}):
                yield document

    async def hold_retention(self) -> None:
        await self._log.hold_retention()


async def _insert(collection: Collection, documents: list[Document], taken: dict[str, str]) -> None:
    """Insert ``documents``; ``taken`` gets those whose id the collection holds for another profile."""
    if not documents:
        return
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if not only_duplicates(error):
            raise
        clashing = [documents[failed["index"]] for failed in error.details["writeErrors"]]
        taken.update(await _logged_for_others(collection, clashing))


async def _claimed_before(
    elsewhere: dict[str, Claimed], owners: dict[str, str], taken: dict[str, str]
) -> set[str]:
    """Of the ids claimed before in another segment (a reuse: rare), those not to be logged again:
    each is read where it was claimed (one read per segment); ``taken`` gets those of others."""
    by_segment: dict[str, tuple[Collection, list[str]]] = {}
    for event_id, claimed in elsewhere.items():
        by_segment.setdefault(claimed.collection.name, (claimed.collection, []))[1].append(event_id)
    logged: dict[str, str] = {}
    for collection, ids in by_segment.values():
        for chunk in chunked(ids):
            async for document in collection.find({"_id": {"$in": chunk}}, {"profileId": 1}):
                logged[document["_id"]] = document["profileId"]
    settled: set[str] = set()
    for event_id, claimed in elsewhere.items():
        owner = logged.get(event_id)
        if owner is None and claimed.owner == owner_digest(owners[event_id]):
            continue  # claimed for this profile, never logged (its write died): logged now
        settled.add(event_id)
        if owner is None:
            taken[event_id] = UNLOGGED_CLAIM
        elif owner != owners[event_id]:
            taken[event_id] = owner
    return settled


async def _logged_for_others(collection: Collection, clashing: list[Document]) -> dict[str, str]:
    """Of these documents, whose ``_id`` is already logged, those logged for another profile."""
    wanted = {document["_id"]: document["profileId"] for document in clashing}
    found: dict[str, str] = {}
    for chunk in chunked(list(wanted)):
        async for document in collection.find({"_id": {"$in": chunk}}, {"profileId": 1}):
            if document["profileId"] != wanted[document["_id"]]:
                found[document["_id"]] = document["profileId"]
    return found


def event_document(event: TrackedEvent, profile_id: str, received_at: datetime) -> Document:
    document = _plain_event_document(event, profile_id, received_at)
    if event.redeemed is not None:
        document["coupon"] = {
            "code": event.redeemed.code,
            "campaign": event.redeemed.campaign,
            "issuedOn": event.redeemed.issued_on.value,
        }
    return document


def _plain_event_document(event: TrackedEvent, profile_id: str, received_at: datetime) -> Document:
    document = _base_event_document(event, profile_id, received_at)
    via = event.target.key
    if via is not None and via != id_key(profile_id):
        document["via"] = via
    return document


def _base_event_document(event: TrackedEvent, profile_id: str, received_at: datetime) -> Document:
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
        redeemed=_redeemed_from_document(document.get("coupon")),
    )


def _redeemed_from_document(stored: Document | None) -> RedeemedCoupon | None:
    if stored is None:
        return None
    return RedeemedCoupon(
        code=stored["code"], campaign=stored["campaign"], issued_on=Channel(stored["issuedOn"])
    )

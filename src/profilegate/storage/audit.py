"""The ``audit`` collection: one entry per admin or partner mutation, newest read first.

Entries get their places (``seq``) from a counter, like the change feed; ``_id`` is the place,
zero-padded. Its collections come from the layout (``storage.layout``): on MongoDB one
collection with a TTL index on ``at``; on the embedded store, where creating a document costs
O(collection size) (DESIGN sec. 2), segments of a fixed number of places, each with the same
TTL index, so writing an entry costs the same in the first week and after a year of busy
partner keys. Segments by count rather than by month: a month's collection would grow with the
traffic (and its writes slow with it), while a segment's size is fixed. The newest-first reads
walk the segments down from the newest, which also keeps the page cursor a plain place.
"""

from datetime import datetime

from pymongo import DESCENDING

from profilegate.domain.audit import Actor, AuditEntry, AuditFilter, NewAuditEntry
from profilegate.domain.keys import Role
from profilegate.storage.documents import Collection, Database, Document
from profilegate.storage.indexes import LOG_INDEXES, RETENTION_FIELDS
from profilegate.storage.layout import AppendLog, Layout, Retention

COUNTER = "audit"
PLACE_DIGITS = 15


def audit_log(layout: Layout, database: Database, retention_seconds: int) -> "AuditLog":
    retention = Retention(RETENTION_FIELDS[COUNTER], retention_seconds)
    return AuditLog(layout.log(database, COUNTER, retention, indexes=LOG_INDEXES[COUNTER]))


class AuditLog:
    def __init__(self, log: AppendLog) -> None:
        self._log = log

    async def append(self, entry: NewAuditEntry) -> AuditEntry:
        placed = AuditEntry(seq=await self._log.reserve(1), **entry.model_dump())
        for collection, chunk in await self._log.placed([placed.seq], [placed]):
            await collection.insert_many([_document(one) for one in chunk])
        return placed

    async def page(self, wanted: AuditFilter, first: int, before: int | None = None) -> list[AuditEntry]:
        """Up to ``first`` entries matching ``wanted``, newest first, placed before ``before``."""
        head = await self._log.head()
        last = head if before is None else min(head, before - 1)
        if last < 1:
            return []
        query = {**_query(wanted), "_id": {"$lte": _place(last)}}
        found: list[AuditEntry] = []
        for collection in self._log.down_from(last):
            cursor = collection.find(query).sort("_id", DESCENDING).limit(first - len(found))
            found += [_from_document(document) async for document in cursor]
            if len(found) >= first or await _older_than(collection, wanted.since):
                break
        return found

    async def hold_retention(self) -> None:
        await self._log.hold_retention()


async def _older_than(collection: Collection, since: datetime | None) -> bool:
    """Whether every entry of this segment (and so of every older one) is before ``since``."""
    if since is None:
        return False
    newest = await collection.find_one({}, sort=[("_id", DESCENDING)])
    return newest is not None and newest["at"] < since


def _query(wanted: AuditFilter) -> Document:
    query: Document = {}
    if wanted.actor is not None:
        query["$or"] = [{"actor.name": wanted.actor}, {"actor.keyId": wanted.actor}]
    if wanted.action is not None:
        query["action"] = wanted.action
    if wanted.profile_id is not None:
        query["profileId"] = wanted.profile_id
    if wanted.outcome is not None:
        query["outcome"] = wanted.outcome
    at: Document = {}
    if wanted.since is not None:
        at["$gte"] = wanted.since
    if wanted.until is not None:
        at["$lt"] = wanted.until
    if at:
        query["at"] = at
    return query


def _place(seq: int) -> str:
    return f"{seq:0{PLACE_DIGITS}d}"


def _document(entry: AuditEntry) -> Document:
    return {
        "_id": _place(entry.seq),
        "at": entry.at,
        "actor": {"name": entry.actor.name, "keyId": entry.actor.key_id, "role": entry.actor.role.value},
        "action": entry.action,
        "arguments": entry.arguments,
        "profileId": entry.profile_id,
        "outcome": entry.outcome,
    }


def _from_document(document: Document) -> AuditEntry:
    actor = document["actor"]
    return AuditEntry(
        seq=int(document["_id"]),
        at=document["at"],
        actor=Actor(name=actor["name"], key_id=actor.get("keyId"), role=Role(actor["role"])),
        action=document["action"],
        arguments=document.get("arguments", {}),
        profile_id=document.get("profileId"),
        outcome=document["outcome"],
    )

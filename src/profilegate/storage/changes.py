"""The ``changes`` collection: the change feed, ordered by a sequence number.

A counter document hands out places (``seq``) in blocks, one block per write, so the places
of one write are contiguous and in order. ``_id`` is the place, zero-padded, so the feed reads
in ``_id`` order. Writers that got their block first may finish last: a reader that sees a
hole waits for it (see ``service.feed``).

Its collections come from the layout (``storage.layout``): on MongoDB one collection with a
TTL index on ``at``, which a change stream follows; on the embedded store segments of a fixed
number of places, dropped whole once older than the retention.

On a replica set the feed is read with read concern ``majority`` and its entries and counter
are written with ``w: majority``: a reader never passes on a change a failover may roll back
(https://www.mongodb.com/docs/manual/reference/read-concern-majority/), and a change it was
told of survives one (https://www.mongodb.com/docs/manual/reference/write-concern/).
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from profilegate.domain.changes import Change, ChangeKind, NewChange
from profilegate.storage.documents import Database, Document
from profilegate.storage.indexes import RETENTION_FIELDS
from profilegate.storage.layout import AppendLog, Concerns, Layout, Retention

type ResumeToken = Mapping[str, Any]

COUNTER = "changes"
PLACE_DIGITS = 15
# The resume token is no longer in the oplog, or the stream cannot go on from it
# (https://www.mongodb.com/docs/manual/reference/error-codes/: ChangeStreamHistoryLost,
# ChangeStreamFatalError).
TOKEN_LOST_CODES = frozenset({280, 286})


class ChangeStreamFailed(Exception):
    """The change stream could not be opened, or broke. ``reason``: ``network`` (no store
    reachable, a failover the driver could not resume from), ``token_lost`` (start again
    without the token), ``refused`` (the store answered an error: no change streams on a
    standalone server or the embedded store) or ``error``."""

    def __init__(self, error: PyMongoError) -> None:
        super().__init__(str(error))
        self.reason = _failure_reason(error)
        self.token_lost = self.reason == "token_lost"


def _failure_reason(error: PyMongoError) -> str:
    if isinstance(error, ConnectionFailure):
        return "network"
    if isinstance(error, OperationFailure):
        return "token_lost" if error.code in TOKEN_LOST_CODES else "refused"
    return "error"


FEED_CONCERNS = Concerns(read=ReadConcern("majority"), write=WriteConcern(w="majority"))


def change_log(layout: Layout, database: Database, retention_seconds: int) -> "ChangeLog":
    retention = Retention(RETENTION_FIELDS[COUNTER], retention_seconds, whole_segments=True)
    return ChangeLog(layout.log(database, COUNTER, retention, concerns=FEED_CONCERNS))


class ChangeLog:
    def __init__(self, log: AppendLog) -> None:
        self._log = log

    @property
    def streams_changes(self) -> bool:
        """Whether one collection holds the feed, which a change stream can follow."""
        return self._log.streamed is not None

    async def append(self, changes: Sequence[NewChange]) -> list[Change]:
        """Give the changes their places, in order, and store them."""
        if not changes:
            return []
        first = await self._log.reserve(len(changes)) - len(changes) + 1
        placed = [Change(seq=first + offset, **change.model_dump()) for offset, change in enumerate(changes)]
        for collection, chunk in await self._log.placed([change.seq for change in placed], placed):
            await collection.insert_many([_document(change) for change in chunk], ordered=True)
        return placed

    async def head(self) -> int:
        """The last place handed out (0 before the first change)."""
        return await self._log.head()

    async def read(self, after: int, *, limit: int, upto: int | None = None) -> list[Change]:
        """Up to ``limit`` stored changes after place ``after`` (and not after ``upto``), in order."""
        last = await self.head() if upto is None else upto
        query: Document = {"_id": {"$gt": _place(after), "$lte": _place(last)}}
        found: list[Change] = []
        for collection in self._log.spanning(after + 1, last):
            if len(found) >= limit:
                break
            cursor = collection.find(query).sort("_id", ASCENDING).limit(limit - len(found))
            found += [_from_document(document) async for document in cursor]
        return found

    async def prune(self, older_than: datetime) -> int:
        """Drop the segments whose every change is older than ``older_than``; return how many.

        One collection (real MongoDB) is pruned by its TTL index instead.
        """
        return await self._log.prune(older_than)

    async def hold_retention(self) -> None:
        await self._log.hold_retention()

    async def for_profiles(self, profile_ids: list[str]) -> list[Change]:
        """Every stored change of these profiles, in place order (a scan of each collection:
        the feed keeps only ``PROFILEGATE_CHANGE_RETENTION_DAYS`` of changes)."""
        found: list[Change] = []
        for collection in await self._log.stored():
            cursor = collection.find({"profileId": {"$in": profile_ids}}).sort("_id", ASCENDING)
            found += [_from_document(document) async for document in cursor]
        return found

    async def blank_for_profiles(self, profile_ids: list[str], keep: ChangeKind) -> int:
        """Empty the payloads of these profiles' changes (except those of kind ``keep``) and mark
        them erased; their places stay, so cursors stay valid. Returns how many were blanked."""
        query: Document = {"profileId": {"$in": profile_ids}, "erased": {"$ne": True}, "kind": {"$ne": keep}}
        blanked = 0
        for collection in await self._log.stored():
            result = await collection.update_many(query, {"$set": {"payload": {}, "erased": True}})
            blanked += result.modified_count
        return blanked

    async def watch(self, resume_token: ResumeToken | None = None) -> AsyncIterator[ResumeToken | None]:
        """Yield the stream's resume token after each insert into the feed, through a change
        stream that starts after ``resume_token`` (None: from now); end when the stream is
        invalidated (the collection dropped or renamed). Raises ``ChangeStreamFailed`` where
        the stream cannot be opened or breaks.

        ``startAfter`` rather than ``resumeAfter``: only it resumes after an invalidate
        (https://www.mongodb.com/docs/manual/changeStreams/#start-a-change-stream-after-an-event).
        The driver already resumes once by itself after a resumable error (a network error, a
        primary stepping down); what reaches here it could not resume.
        """
        streamed = self._log.streamed
        if streamed is None:
            raise RuntimeError("a segmented change feed has no change stream")
        # Invalidate events pass any $match (https://www.mongodb.com/docs/manual/reference/change-events/invalidate/).
        pipeline = [{"$match": {"operationType": "insert"}}]
        try:
            async with await streamed.watch(pipeline, start_after=resume_token) as stream:
                async for _ in stream:
                    yield stream.resume_token
        except PyMongoError as error:
            raise ChangeStreamFailed(error) from error


def _place(seq: int) -> str:
    return f"{seq:0{PLACE_DIGITS}d}"


def _document(change: Change) -> Document:
    return {
        "_id": _place(change.seq),
        "at": change.at,
        "kind": change.kind.value,
        "profileId": change.profile_id,
        "payload": change.payload,
        "shareable": change.shareable,
        "segments": list(change.segments),
    }


def _from_document(document: Document) -> Change:
    return Change(
        seq=int(document["_id"]),
        at=document["at"],
        kind=ChangeKind(document["kind"]),
        profile_id=document["profileId"],
        payload=document.get("payload", {}),
        shareable=bool(document.get("shareable")),
        segments=tuple(document.get("segments", ())),
    )

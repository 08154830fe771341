"""The storage layout: everything that differs between the embedded store and MongoDB.

Two layouts (DESIGN sec. 8), fixed when a database is first used and stored in ``meta``:

- ``embedded``: the embedded store pays O(collection size) for every new document (DESIGN
  sec. 2), so the collections that take new documents stay small. Profiles, identity keys,
  tombstones and checkout documents are hash-partitioned over ``partitions`` collections
  (``PartitionedCollection``); each append-only log (events, change feed, audit) is rolled
  over into segments of ``event_segment_size`` places (``events_s000000``, ...). No change
  streams.
- ``mongodb``: one collection each, TTL indexes for retention, a change stream on the feed,
  keys a sharded cluster can use.

Repositories never ask which layout is in use: they take a ``PartitionedCollection`` or an
``AppendLog`` built here, and call the same methods on either.
"""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from profilegate.storage.documents import Collection, Database
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.places import handed_out, reserve, reserve_claimed

LAYOUT_ID = "layout"
TTL_INDEX = "retention"
# expireAfterSeconds is a 32-bit signed integer, 0 to 2147483647:
# https://www.mongodb.com/docs/manual/core/index-ttl/
MAX_TTL_SECONDS = 2_147_483_647
INDEX_NOT_FOUND = 27
COMMAND_NOT_FOUND = 59


class LayoutKind(StrEnum):
    EMBEDDED = "embedded"
    MONGODB = "mongodb"


class LayoutMismatch(RuntimeError):
    """The database was first used in another layout than the one explicitly asked for."""


@dataclass(frozen=True)
class Layout:
    """``partitions``: collections each partitioned collection is spread over.
    ``event_segment_size``: places per segment of each log; None keeps one collection."""

    kind: LayoutKind = LayoutKind.MONGODB
    partitions: int = 1
    event_segment_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind is LayoutKind.MONGODB and (self.partitions != 1 or self.event_segment_size is not None):
            raise ValueError("the mongodb layout keeps one collection each (no partitions, no segments)")
        if self.kind is LayoutKind.EMBEDDED and self.event_segment_size is None:
            raise ValueError("the embedded layout needs a segment size for its logs")

    @classmethod
    def embedded(cls, partitions: int, event_segment_size: int) -> "Layout":
        return cls(LayoutKind.EMBEDDED, partitions, event_segment_size)

    def partitioned(self, database: Database, name: str) -> PartitionedCollection:
        return PartitionedCollection(database, name, self.partitions)

    def log(
        self,
        database: Database,
        name: str,
        retention: "Retention",
        *,
        indexes: Sequence[IndexModel] = (),
        concerns: "Concerns | None" = None,
    ) -> "AppendLog":
        spec = LogSpec(name, retention, tuple(indexes), concerns or Concerns())
        if self.event_segment_size is None:
            return SingleLog(database, spec)
        return SegmentedLog(database, spec, self.event_segment_size)


@dataclass(frozen=True)
class Retention:
    """How long a log keeps its documents, by the datetime in ``field``. ``whole_segments``:
    segments are dropped whole by ``AppendLog.prune`` and carry no TTL index."""

    field: str
    seconds: int
    whole_segments: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.seconds <= MAX_TTL_SECONDS:
            raise ValueError(
                f"a retention of {self.seconds} s does not fit expireAfterSeconds (0-{MAX_TTL_SECONDS})"
            )

    def index(self) -> IndexModel:
        return IndexModel([(self.field, ASCENDING)], name=TTL_INDEX, expireAfterSeconds=self.seconds)


@dataclass(frozen=True)
class Concerns:
    """Read and write concerns of a log's collections and of its counter (None: the client's)."""

    read: ReadConcern | None = None
    write: WriteConcern | None = None


@dataclass(frozen=True)
class Claimed:
    """Where a key was claimed first (``collection``), and a digest of its owner
    (``places.owner_digest``)."""

    collection: Collection
    owner: bytes


@dataclass(frozen=True)
class LogSpec:
    name: str
    retention: Retention
    indexes: tuple[IndexModel, ...] = ()
    concerns: Concerns = field(default_factory=Concerns)


class AppendLog(Protocol):
    """The collections of one append-only log, addressed by place (the counter ``name`` in ``meta``
    hands places out in blocks)."""

    @property
    def streamed(self) -> Collection | None:
        """The one collection that holds the log, which a change stream can follow."""

    async def reserve(self, count: int) -> int:
        """Hand out ``count`` more places; the count handed out so far, these included."""

    async def head(self) -> int:
        """How many places were handed out."""

    async def slotted[T](self, items: Sequence[T]) -> list[tuple[Collection, list[T]]]:
        """Where to store items that have no place of their own, in order."""

    async def slotted_claimed[T](
        self, claims: Sequence[tuple[str, str]], items: Sequence[T]
    ) -> tuple[list[tuple[Collection, list[T]]], dict[str, "Claimed"]]:
        """``slotted``, each item claiming its ``(key, owner)``; and, for each key claimed before
        in another collection than the one its item goes to, where and for whom (a key claimed
        before in the same collection is refused there by the ``_id`` index)."""

    async def placed[T](self, places: Sequence[int], items: Sequence[T]) -> list[tuple[Collection, list[T]]]:
        """Where to store each item, by its place, in place order; the collections are ready."""

    def spanning(self, first: int, last: int) -> list[Collection]:
        """The collections that hold places ``first`` to ``last``, oldest first."""

    def down_from(self, last: int) -> list[Collection]:
        """The collections that hold places ``last`` down to the first, newest first."""

    async def stored(self) -> list[Collection]:
        """Every collection of the log that exists, oldest first."""

    async def prune(self, older_than: datetime) -> int:
        """Drop what is wholly older than ``older_than`` where no TTL index does; how many."""

    async def hold_retention(self) -> None:
        """Give the stored collections the TTL the retention asks for (changed in place)."""


class SingleLog:
    """One collection with a TTL index (the mongodb layout)."""

    def __init__(self, database: Database, spec: LogSpec) -> None:
        self._spec = spec
        self._meta = _collection(database, "meta", spec.concerns)
        self._collection = _collection(database, spec.name, spec.concerns)
        self._ready = False

    @property
    def streamed(self) -> Collection | None:
        return self._collection

    async def reserve(self, count: int) -> int:
        return await reserve(self._meta, self._spec.name, count)

    async def head(self) -> int:
        return await handed_out(self._meta, self._spec.name)

    async def slotted[T](self, items: Sequence[T]) -> list[tuple[Collection, list[T]]]:
        return await self.placed([0] * len(items), items)

    async def slotted_claimed[T](
        self, claims: Sequence[tuple[str, str]], items: Sequence[T]
    ) -> tuple[list[tuple[Collection, list[T]]], dict[str, "Claimed"]]:
        return await self.slotted(items), {}  # one collection: its _id index knows every claim

    async def placed[T](self, places: Sequence[int], items: Sequence[T]) -> list[tuple[Collection, list[T]]]:
        if not self._ready:
            await hold_indexes(self._collection, self._spec.indexes, self._spec.retention)
            self._ready = True
        return [(self._collection, list(items))]

    def spanning(self, first: int, last: int) -> list[Collection]:
        return [self._collection]

    def down_from(self, last: int) -> list[Collection]:
        return [self._collection]

    async def stored(self) -> list[Collection]:
        return [self._collection]

    async def prune(self, older_than: datetime) -> int:
        return 0  # the TTL index prunes

    async def hold_retention(self) -> None:
        await hold_ttl(self._collection, self._spec.retention, create=False)


class SegmentedLog:
    """Segments of ``size`` places, ``<name>_s000000`` upwards (the embedded layout)."""

    def __init__(self, database: Database, spec: LogSpec, size: int) -> None:
        self._database = database
        self._spec = spec
        self._size = size
        self._meta = _collection(database, "meta", spec.concerns)
        self._ready: set[str] = set()

    @property
    def streamed(self) -> Collection | None:
        return None

    async def reserve(self, count: int) -> int:
        return await reserve(self._meta, self._spec.name, count)

    async def head(self) -> int:
        return await handed_out(self._meta, self._spec.name)

    async def slotted[T](self, items: Sequence[T]) -> list[tuple[Collection, list[T]]]:
        first = await self.reserve(len(items)) - len(items)
        return await self.placed(range(first, first + len(items)), items)

    async def slotted_claimed[T](
        self, claims: Sequence[tuple[str, str]], items: Sequence[T]
    ) -> tuple[list[tuple[Collection, list[T]]], dict[str, "Claimed"]]:
        """The claims are recorded on the counter in the reservation itself, so a key claimed in
        an older segment is known without reading any segment (a lookup that misses costs
        O(segment size) on the embedded store, and there are ever more segments)."""
        first, earlier = await reserve_claimed(self._meta, self._spec.name, claims)
        places = range(first, first + len(items))
        own = {key: place // self._size for (key, _), place in zip(claims, places, strict=True)}
        elsewhere = {
            key: Claimed(self._segment(claim.place // self._size), claim.owner)
            for key, claim in earlier.items()
            if claim.place // self._size != own[key]
        }
        return await self.placed(places, items), elsewhere

    async def placed[T](self, places: Sequence[int], items: Sequence[T]) -> list[tuple[Collection, list[T]]]:
        grouped: dict[int, list[T]] = {}
        for place, item in zip(places, items, strict=True):
            grouped.setdefault(place // self._size, []).append(item)
        placed = [(self._segment(index), chunk) for index, chunk in sorted(grouped.items())]
        for collection, _ in placed:
            await self._make_ready(collection)
        return placed

    def spanning(self, first: int, last: int) -> list[Collection]:
        return [self._segment(index) for index in range(first // self._size, last // self._size + 1)]

    def down_from(self, last: int) -> list[Collection]:
        return [self._segment(index) for index in range(last // self._size, -1, -1)]

    async def stored(self) -> list[Collection]:
        return [self._segment(index) for index in await self._stored_indexes()]

    async def prune(self, older_than: datetime) -> int:
        if not self._spec.retention.whole_segments:
            return 0  # each segment's TTL index prunes
        current = await self.head() // self._size
        dropped = 0
        for index in await self._stored_indexes():
            if index >= current:
                continue
            segment = self._segment(index)
            newest = await segment.find_one({}, sort=[("_id", DESCENDING)])
            if newest is None or newest[self._spec.retention.field] < older_than:
                await self._database.drop_collection(segment.name)
                dropped += 1
        return dropped

    async def hold_retention(self) -> None:
        """The newest segment tells whether the retention changed; only then is every one visited."""
        if self._spec.retention.whole_segments:
            return
        segments = await self.stored()
        if segments and not await hold_ttl(segments[-1], self._spec.retention, create=False):
            for segment in segments[:-1]:
                await hold_ttl(segment, self._spec.retention, create=False)

    async def _stored_indexes(self) -> list[int]:
        prefix = f"{self._spec.name}_s"
        names = await self._database.list_collection_names(filter={"name": {"$regex": f"^{prefix}"}})
        return sorted(int(name.removeprefix(prefix)) for name in names)

    def _segment(self, index: int) -> Collection:
        return _collection(self._database, f"{self._spec.name}_s{index:06d}", self._spec.concerns)

    async def _make_ready(self, segment: Collection) -> None:
        if segment.name not in self._ready:
            retention = None if self._spec.retention.whole_segments else self._spec.retention
            await hold_indexes(segment, self._spec.indexes, retention)
            self._ready.add(segment.name)


def _collection(database: Database, name: str, concerns: Concerns) -> Collection:
    return database.get_collection(name, read_concern=concerns.read, write_concern=concerns.write)


async def hold_indexes(
    collection: Collection, indexes: Sequence[IndexModel], retention: Retention | None
) -> None:
    if indexes:
        await collection.create_indexes(list(indexes))
    if retention is not None:
        await hold_ttl(collection, retention)


async def hold_ttl(collection: Collection, retention: Retention, *, create: bool = True) -> bool:
    """Create the TTL index (unless not ``create``), or change its ``expireAfterSeconds`` in
    place; whether it was right already.

    Creating it again with other options fails (IndexOptionsConflict), so a changed retention
    is applied with ``collMod`` (https://www.mongodb.com/docs/manual/core/index-ttl/). The
    embedded store does not know ``collMod``: there the index is dropped and created again.
    """
    found = (await collection.index_information()).get(TTL_INDEX)
    if found is not None and found.get("expireAfterSeconds") == retention.seconds:
        return True
    if found is None:
        if create:
            await collection.create_indexes([retention.index()])
        return False
    try:
        await collection.database.command(
            "collMod", collection.name, index={"name": TTL_INDEX, "expireAfterSeconds": retention.seconds}
        )
    except OperationFailure as error:
        if not _unknown_command(error):
            raise
        await _recreate_ttl(collection, retention)
    return False


async def _recreate_ttl(collection: Collection, retention: Retention) -> None:
    try:
        await collection.drop_index(TTL_INDEX)
    except OperationFailure as error:  # another gateway dropped it first
        if error.code != INDEX_NOT_FOUND:
            raise
    await collection.create_indexes([retention.index()])


def _unknown_command(error: OperationFailure) -> bool:
    message = str((error.details or {}).get("errmsg", ""))
    return error.code == COMMAND_NOT_FOUND or message.startswith("unsupported wire command")


async def load_layout(database: Database, wanted: Layout, *, explicit: bool = False) -> Layout:
    """Return the layout stored for this database, storing ``wanted`` on first use.

    The layout decides where each document lives, so it never changes once data exists. A
    layout asked for ``explicit``-ly (``PROFILEGATE_STORAGE_LAYOUT``) that is not the stored
    one stops start-up; otherwise the stored one wins.
    """
    meta = database["meta"]
    found = await meta.find_one({"_id": LAYOUT_ID})
    if found is None:
        with contextlib.suppress(DuplicateKeyError):
            await meta.insert_one(
                {
                    "_id": LAYOUT_ID,
                    "kind": wanted.kind.value,
                    "partitions": wanted.partitions,
                    "eventSegmentSize": wanted.event_segment_size,
                }
            )
        found = await meta.find_one({"_id": LAYOUT_ID})
        assert found is not None, "the layout document was just written"
    stored = _stored_layout(found)
    if explicit and stored.kind is not wanted.kind:
        raise LayoutMismatch(
            f"the database {database.name!r} was first used in the {stored.kind.value} layout; "
            f"PROFILEGATE_STORAGE_LAYOUT={wanted.kind.value} does not match it (unset it, set it to "
            f"{stored.kind.value}, or use another database)"
        )
    return stored


def _stored_layout(found: dict[str, object]) -> Layout:
    partitions = int(str(found["partitions"]))
    segment = found.get("eventSegmentSize")
    segment_size = None if segment is None else int(str(segment))
    # Databases laid out before the kind was stored: segments mean the embedded layout.
    default = LayoutKind.MONGODB if segment_size is None and partitions == 1 else LayoutKind.EMBEDDED
    kind = LayoutKind(str(found.get("kind", default.value)))
    return Layout(kind, partitions, segment_size)

"""The ``tombstones`` collection: one document per erased identity and profile id.

``_id`` is the hash :func:`profilegate.domain.erasure.tombstone_id` gives, never the plain
identity. Every creation of a profile asks here first, by ``_id``. On the embedded store a
lookup that misses costs O(collection size) (DESIGN sec. 2), and almost every lookup misses
(a new visitor is not an erased one), so the collection is hash-partitioned like
``identity_keys``: the cost is O(tombstones / partitions), and tombstones leave through a
TTL index on ``erasedAt`` after ``PROFILEGATE_TOMBSTONE_RETENTION_DAYS``.
"""

import contextlib
from collections.abc import Iterable
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from profilegate.domain.erasure import Tombstone
from profilegate.storage.command_limits import chunked
from profilegate.storage.indexes import RETENTION_FIELDS
from profilegate.storage.layout import Retention, hold_ttl
from profilegate.storage.partitions import PartitionedCollection


class TombstoneRepository:
    def __init__(self, collection: PartitionedCollection, retention_seconds: int) -> None:
        self._tombstones = collection
        self._retention = Retention(RETENTION_FIELDS["tombstones"], retention_seconds)
        self._indexed = False

    async def bury(self, ids: Iterable[str], profile_id: str, at: datetime, reason: str) -> int:
        """Leave a tombstone per id, naming the profile being erased until :meth:`settle`; one
        already there stays as it is. Returns how many are new."""
        await self._ensure_indexes()
        written = 0
        for tombstone in ids:
            with contextlib.suppress(DuplicateKeyError):
                await self._tombstones.for_id(tombstone).insert_one(
                    {"_id": tombstone, "erasedAt": at, "reason": reason, "profileId": profile_id}
                )
                written += 1
        return written

    async def settle(self, profile_id: str) -> None:
        """The erasure of ``profile_id`` is done: its tombstones stop naming it (a scan of every
        partition, once per erasure)."""
        for collection in self._tombstones.all():
            await collection.update_many({"profileId": profile_id}, {"$unset": {"profileId": ""}})

    async def find(self, tombstone: str) -> Tombstone | None:
        found = await self._tombstones.for_id(tombstone).find_one({"_id": tombstone})
        if found is None:
            return None
        return Tombstone(
            id=found["_id"],
            erased_at=found["erasedAt"],
            reason=found.get("reason", ""),
            erasing=found.get("profileId"),
        )

    async def buried(self, tombstones: Iterable[str]) -> set[str]:
        """Which of ``tombstones`` are there: one read per partition."""
        found: set[str] = set()
        for collection, wanted in self._tombstones.by_partition(tombstones).items():
            for chunk in chunked(wanted):
                found.update(
                    [
                        document["_id"]
                        async for document in collection.find({"_id": {"$in": chunk}}, {"_id": 1})
                    ]
                )
        return found

    async def hold_retention(self) -> None:
        """Give the partitions that exist the TTL the retention asks for (changed in place)."""
        for collection in self._tombstones.all():
            await hold_ttl(collection, self._retention, create=False)

    async def _ensure_indexes(self) -> None:
        if not self._indexed:
            for collection in self._tombstones.all():
                await hold_ttl(collection, self._retention)
            self._indexed = True

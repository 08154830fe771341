"""The ``segment_sizes`` collection: each segment's size on each shop day, as the hourly refresh
last counted it (``_id`` = ``<segment key>|<day>``, so a day's later count replaces the
earlier one)."""

from collections.abc import Mapping
from datetime import date, datetime

from pymongo import ASCENDING, UpdateOne

from profilegate.storage.documents import Collection


class SegmentSizeRepository:
    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    async def record(self, sizes: Mapping[str, int], day: date, at: datetime) -> None:
        """Each segment's size (by key) on ``day``, counted at ``at``, in one round trip."""
        writes = [
            UpdateOne(
                {"_id": f"{key}|{day.isoformat()}"},
                {"$set": {"segment": key, "day": day.isoformat(), "size": size, "at": at}},
                upsert=True,
            )
            for key, size in sizes.items()
        ]
        if writes:
            await self._collection.bulk_write(writes, ordered=False)

    async def history(self, key: str, first: date, last: date) -> list[tuple[date, int]]:
        """The sizes recorded from ``first`` to ``last``, oldest first; days without a refresh are missing."""
        query = {"segment": key, "day": {"$gte": first.isoformat(), "$lte": last.isoformat()}}
        cursor = self._collection.find(query, sort=[("day", ASCENDING)], batch_size=10_000)
        return [(date.fromisoformat(document["day"]), document["size"]) async for document in cursor]

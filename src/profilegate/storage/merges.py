"""The ``merges`` collection: one record per profile merged away, ``_id`` is the loser's id."""

import contextlib
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from profilegate.storage.documents import Collection, Document


class MergeLog:
    def __init__(self, collection: Collection) -> None:
        self._merges = collection

    async def record(
        self, *, loser: str, winner: str, at: datetime, by: str, reason: str, identities: list[str]
    ) -> None:
        """Log a merge; logging the same merge again changes nothing."""
        document = {
            "_id": loser,
            "winner": winner,
            "at": at,
            "by": by,
            "reason": reason,
            "identities": identities,
        }
        with contextlib.suppress(DuplicateKeyError):
            await self._merges.insert_one(document)

    async def recorded(self, loser: str, winner: str) -> bool:
        """Whether this merge finished (it is logged once the winner took the loser in)."""
        return await self._merges.find_one({"_id": loser, "winner": winner}, {"_id": 1}) is not None

    async def involving(self, profile_ids: list[str]) -> list[Document]:
        """The merges these profiles took part in, as loser or winner, oldest first."""
        cursor = self._merges.find(_involving(profile_ids)).sort([("at", 1), ("_id", 1)])
        return [document async for document in cursor]

    async def delete_involving(self, profile_ids: list[str]) -> int:
        return (await self._merges.delete_many(_involving(profile_ids))).deleted_count

    async def into(self, winner: str, limit: int) -> list[Document]:
        """The merges that folded profiles into ``winner``, newest first."""
        cursor = self._merges.find({"winner": winner}).sort([("at", -1), ("_id", 1)]).limit(limit)
        return [document async for document in cursor]


def _involving(profile_ids: list[str]) -> Document:
    return {"$or": [{"_id": {"$in": profile_ids}}, {"winner": {"$in": profile_ids}}]}

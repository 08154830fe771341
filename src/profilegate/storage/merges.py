"""The ``merges`` collection: one record per profile merged away, ``_id`` is the loser's id.

A record also keeps what the winner held before it took the loser in (``winnerBefore``, since
unmerges exist), so that the merge can be undone exactly. An unmerge marks the record
(``undo``) before its first write and, once it has finished, moves the record aside to
``<loser>@<merge time in ms>`` with ``loser`` and ``undone`` set: the loser may be merged again
under its own ``_id``, and the history stays.
"""

import contextlib
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from profilegate.domain.consents import Consent
from profilegate.domain.merges import MergeRecord, UndoMark, WinnerBefore
from profilegate.storage.documents import Collection, Document
from profilegate.storage.profiles import extensions_from_document, extensions_to_document


class MergeLog:
    def __init__(self, collection: Collection) -> None:
        self._merges = collection

    async def record(
        self,
        *,
        loser: str,
        winner: str,
        at: datetime,
        by: str,
        reason: str,
        identities: list[str],
        before: WinnerBefore | None = None,
    ) -> None:
        """Log a merge; logging the same merge again changes nothing."""
        document: Document = {
            "_id": loser,
            "winner": winner,
            "at": at,
            "by": by,
            "reason": reason,
            "identities": identities,
        }
        if before is not None:
            document["winnerBefore"] = _before_document(before)
        with contextlib.suppress(DuplicateKeyError):
            await self._merges.insert_one(document)

    async def recorded(self, loser: str, winner: str) -> bool:
        """Whether this merge finished (it is logged once the winner took the loser in)."""
        return await self._merges.find_one({"_id": loser, "winner": winner}, {"_id": 1}) is not None

    async def get(self, loser: str) -> MergeRecord | None:
        """The merge that folded ``loser`` away (also while it is being undone)."""
        found = await self._merges.find_one({"_id": loser})
        return None if found is None else record_from_document(found)

    async def start_undo(self, loser: str, mark: UndoMark) -> MergeRecord | None:
        """Mark the merge as being undone, unless an unmerge was started already (its mark
        stays); the record as it is now, None if there is none."""
        await self._merges.update_one(
            {"_id": loser, "undo": None},
            {"$set": {"undo": {"at": mark.at, "by": mark.by, "reason": mark.reason}}},
        )
        return await self.get(loser)

    async def finish_undo(self, record: MergeRecord, done: datetime) -> None:
        """Move the undone record aside (a copy under its history id first, then the record
        goes); each step may be made again."""
        found = await self._merges.find_one({"_id": record.loser, "undo": {"$ne": None}})
        if found is not None:
            found["undo"]["done"] = found["undo"].get("done") or done
            kept = {**found, "_id": history_id(record), "loser": record.loser, "undone": found["undo"]}
            with contextlib.suppress(DuplicateKeyError):
                await self._merges.insert_one(kept)
            await self._merges.delete_one({"_id": record.loser, "undo": {"$ne": None}})

    async def undone(self, loser: str) -> list[MergeRecord]:
        """The undone merges of ``loser``, oldest first."""
        cursor = self._merges.find({"loser": loser, "undone": {"$ne": None}}).sort([("at", 1), ("_id", 1)])
        return [record_from_document(document) async for document in cursor]

    async def involving(self, profile_ids: list[str]) -> list[Document]:
        """The merges these profiles took part in, as loser or winner, oldest first (undone
        ones included)."""
        cursor = self._merges.find(_involving(profile_ids)).sort([("at", 1), ("_id", 1)])
        return [document async for document in cursor]

    async def delete_involving(self, profile_ids: list[str]) -> int:
        return (await self._merges.delete_many(_involving(profile_ids))).deleted_count

    async def into(self, winner: str, limit: int) -> list[Document]:
        """The merges that folded profiles into ``winner``, newest first (not those undone)."""
        query = {"winner": winner, "undone": None}
        cursor = self._merges.find(query).sort([("at", -1), ("_id", 1)]).limit(limit)
        return [document async for document in cursor]


def history_id(record: MergeRecord) -> str:
    return f"{record.loser}@{int(record.at.timestamp() * 1000)}"


def record_from_document(document: Document) -> MergeRecord:
    undo = document.get("undo")
    before = document.get("winnerBefore")
    return MergeRecord(
        loser=str(document.get("loser") or document["_id"]),
        winner=document["winner"],
        at=document["at"],
        by=document["by"],
        reason=document["reason"],
        identities=tuple(document.get("identities", ())),
        before=None if before is None else _before_from_document(before),
        undo=None if undo is None else UndoMark(undo["at"], undo["by"], undo["reason"], undo.get("done")),
    )


def _before_document(before: WinnerBefore) -> Document:
    return {
        "traits": before.traits,
        "consents": {
            purpose: {"granted": c.granted, "at": c.at, "source": c.source}
            for purpose, c in before.consents.items()
        },
        "extensions": extensions_to_document(before.extensions),
        "mergedTraits": before.merged_traits,
    }


def _before_from_document(document: Document) -> WinnerBefore:
    return WinnerBefore(
        traits=document.get("traits", {}),
        consents={
            purpose: Consent(purpose=purpose, granted=c["granted"], at=c["at"], source=c["source"])
            for purpose, c in document.get("consents", {}).items()
        },
        extensions=extensions_from_document(document),
        merged_traits=document.get("mergedTraits", {}),
    )


def _involving(profile_ids: list[str]) -> Document:
    return {
        "$or": [
            {"_id": {"$in": profile_ids}},
            {"loser": {"$in": profile_ids}},
            {"winner": {"$in": profile_ids}},
        ]
    }

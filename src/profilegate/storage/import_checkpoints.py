"""The checkpoints of imports, one small document per imported file, addressed by ``_id``, and
the rows each checkpointed chunk rejected (``import_rejections``), so that a resumed import can
list the rejections of the part done before it was interrupted."""

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from profilegate.domain.imports import ImportCheckpoint, ImportCounts
from profilegate.storage.documents import Collection, Document

# Rejections per document: a chunk of many rejected rows is kept in several documents, each well
# below MongoDB's 16 MiB document limit however long the reasons.
REJECTIONS_PER_DOCUMENT = 1_000


class ImportCheckpointRepository:
    def __init__(self, collection: Collection, rejections: Collection) -> None:
        self._collection = collection
        self._rejections = rejections

    async def get(self, key: str) -> ImportCheckpoint | None:
        document = await self._collection.find_one({"_id": key})
        return None if document is None else _checkpoint(document)

    async def save(self, checkpoint: ImportCheckpoint, held_by: datetime | None) -> bool:
        """Replace the file's checkpoint in one single-document write (atomic on its own) if the
        run of ``held_by`` holds the file (None: no run yet); whether it did. A run takes a file
        over by naming the time of the run before it, then saves under its own time."""
        document: Document = {
            "records": checkpoint.records,
            "counts": checkpoint.counts.as_dict(),
            "finished": checkpoint.finished,
            "runAt": checkpoint.run_at,
            "finishedAt": checkpoint.finished_at,
        }
        try:
            await self._collection.replace_one(
                {"_id": checkpoint.key, "runAt": held_by}, document, upsert=True
            )
        except DuplicateKeyError:
            return False  # another run holds the file now
        return True

    async def forget(self, key: str) -> None:
        await self._collection.delete_one({"_id": key})
        await self._rejections.delete_many({"file": key})

    async def keep_rejections(self, key: str, start: int, upto: int, rows: Sequence[tuple[int, str]]) -> None:
        """The rows rejected by the records ``start`` to ``upto`` of the file ``key``, as (line,
        reason); written before the checkpoint that says those records are done."""
        for part, first in enumerate(range(0, len(rows), REJECTIONS_PER_DOCUMENT)):
            kept = [[line, reason] for line, reason in rows[first : first + REJECTIONS_PER_DOCUMENT]]
            document: Document = {"file": key, "start": start, "upto": upto, "rows": kept}
            await self._rejections.replace_one(
                {"_id": f"{key}:{start:012d}:{part:06d}"}, document, upsert=True
            )

    async def drop_rejections_after(self, key: str, records: int) -> None:
        """Forget what chunks beyond the first ``records`` records rejected: an interrupted run
        wrote them, and they are read again (0: all of the file's, once it is done)."""
        await self._rejections.delete_many({"file": key, "upto": {"$gt": records}})

    async def rejections(self, key: str, records: int) -> AsyncIterator[tuple[int, str]]:
        """The rows the first ``records`` records of the file rejected, as (line, reason), in order."""
        found = self._rejections.find({"file": key, "upto": {"$lte": records}}).sort("_id", 1)
        async for document in found:
            for line, reason in document["rows"]:
                yield int(line), str(reason)


def _checkpoint(document: Document) -> ImportCheckpoint:
    return ImportCheckpoint(
        key=document["_id"],
        records=int(document["records"]),
        counts=ImportCounts.from_dict(document["counts"]),
        finished=bool(document["finished"]),
        run_at=document.get("runAt"),
        finished_at=document.get("finishedAt"),
    )

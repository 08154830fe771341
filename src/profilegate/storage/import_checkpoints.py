"""The checkpoints of imports, one small document per imported file, addressed by ``_id``."""

from profilegate.domain.imports import ImportCheckpoint, ImportCounts
from profilegate.storage.documents import Collection, Document


class ImportCheckpointRepository:
    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    async def get(self, key: str) -> ImportCheckpoint | None:
        document = await self._collection.find_one({"_id": key})
        return None if document is None else _checkpoint(document)

    async def save(self, checkpoint: ImportCheckpoint) -> None:
        """Replace the file's checkpoint in one single-document write (atomic on its own)."""
        document: Document = {
            "records": checkpoint.records,
            "counts": checkpoint.counts.as_dict(),
            "finished": checkpoint.finished,
        }
        await self._collection.replace_one({"_id": checkpoint.key}, document, upsert=True)

    async def forget(self, key: str) -> None:
        await self._collection.delete_one({"_id": key})


def _checkpoint(document: Document) -> ImportCheckpoint:
    return ImportCheckpoint(
        key=document["_id"],
        records=int(document["records"]),
        counts=ImportCounts(**{name: int(value) for name, value in document["counts"].items()}),
        finished=bool(document["finished"]),
    )

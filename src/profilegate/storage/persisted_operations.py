"""The ``persisted_operations`` collection: operation documents admins allow, ``_id`` their SHA-256."""

from datetime import datetime

from profilegate.storage.documents import Collection, Document


class PersistedOperationRepository:
    def __init__(self, collection: Collection) -> None:
        self._operations = collection

    async def save(self, sha256: str, document: str, *, by: str, now: datetime) -> bool:
        """Store the document under its hash; False when it was there already."""
        result = await self._operations.update_one(
            {"_id": sha256},
            {"$setOnInsert": {"document": document, "registeredBy": by, "registeredAt": now}},
            upsert=True,
        )
        return result.upserted_id is not None

    async def get(self, sha256: str) -> str | None:
        found = await self.record(sha256)
        return None if found is None else found[1]

    async def record(self, sha256: str) -> tuple[str, str, str, datetime] | None:
        """One operation: hash, document, who registered it, when."""
        found = await self._operations.find_one({"_id": sha256})
        return None if found is None else _record(found)

    async def all(self) -> list[tuple[str, str, str, datetime]]:
        """Every operation: hash, document, who registered it, when."""
        return [_record(d) async for d in self._operations.find({}).sort("_id", 1)]

    async def delete(self, sha256: str) -> bool:
        return (await self._operations.delete_one({"_id": sha256})).deleted_count == 1


def _record(document: Document) -> tuple[str, str, str, datetime]:
    return (document["_id"], str(document["document"]), document["registeredBy"], document["registeredAt"])

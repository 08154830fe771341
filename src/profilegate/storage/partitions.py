"""Hash-routing of one logical collection over several physical ones.

On real MongoDB a logical collection is one collection (``count == 1``). The embedded store
pays O(collection size) for every new document (DESIGN sec. 2), so there the collections
that take new documents are spread over ``count`` physical collections, routed by a stable
hash of ``_id``. Reads and writes by ``_id`` touch exactly one of them.
"""

import zlib
from collections.abc import Iterable

from profilegate.storage.documents import Collection, Database


class PartitionedCollection:
    def __init__(self, database: Database, name: str, count: int) -> None:
        self.name = name
        self.count = count
        if count == 1:
            self._collections = [database[name]]
        else:
            self._collections = [database[f"{name}_p{index:03d}"] for index in range(count)]

    def for_id(self, document_id: str) -> Collection:
        return self._collections[self.route(document_id)]

    def route(self, document_id: str) -> int:
        """The index, in ``all()``, of the collection that holds ``document_id``."""
        if self.count == 1:
            return 0
        return zlib.crc32(document_id.encode()) % self.count

    def all(self) -> list[Collection]:
        return list(self._collections)

    def by_partition(self, ids: Iterable[str]) -> dict[Collection, list[str]]:
        """``ids`` grouped by the collection that holds each, in first-seen order."""
        grouped: dict[Collection, list[str]] = {}
        for document_id in dict.fromkeys(ids):
            grouped.setdefault(self.for_id(document_id), []).append(document_id)
        return grouped

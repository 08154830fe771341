"""Every secondary index, created idempotently at start-up.

Kept deliberately few: no array (multikey) and no unique secondary indexes, which make every
write O(collection size) on the embedded store (DESIGN sec. 2). Uniqueness comes from ``_id``.
"""

from pymongo import ASCENDING, DESCENDING, IndexModel

from profilegate.storage.documents import Database

INDEXES: dict[str, list[IndexModel]] = {
    "api_keys": [IndexModel([("name", ASCENDING)], name="name")],
    "merges": [IndexModel([("winner", ASCENDING), ("at", DESCENDING)], name="winner")],
}


async def ensure_indexes(database: Database) -> None:
    for collection, models in INDEXES.items():
        await database[collection].create_indexes(models)

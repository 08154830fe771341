"""Every secondary index, created idempotently at start-up.

Kept deliberately few: no array (multikey) and no unique secondary indexes, which make every
write O(collection size) on the embedded store (DESIGN sec. 2). Uniqueness comes from ``_id``.
"""

from pymongo import ASCENDING, DESCENDING, IndexModel

from profilegate.storage.documents import Database
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.segment_query import PREFILTER_INDEXES

INDEXES: dict[str, list[IndexModel]] = {
    "api_keys": [IndexModel([("name", ASCENDING)], name="name")],
    "merges": [IndexModel([("winner", ASCENDING), ("at", DESCENDING)], name="winner")],
    "destination_dead_letters": [
        IndexModel([("destination", ASCENDING), ("at", DESCENDING)], name="destination")
    ],
}
# The logs' secondary indexes, created with each of their collections (``storage.layout``).
PROFILE_ID_INDEX = IndexModel([("profileId", ASCENDING)], name="profileId")
LOG_INDEXES: dict[str, list[IndexModel]] = {
    "events": [PROFILE_ID_INDEX],
    "audit": [PROFILE_ID_INDEX],
    "destination_deliveries": [IndexModel([("destination", ASCENDING)], name="destination")],
}
# The datetime each pruned collection's TTL index (or segment pruning) reads.
RETENTION_FIELDS = {
    "events": "receivedAt",
    "changes": "at",
    "audit": "at",
    "tombstones": "erasedAt",
    "destination_deliveries": "at",
}


async def ensure_indexes(database: Database) -> None:
    for collection, models in INDEXES.items():
        await database[collection].create_indexes(models)


async def ensure_segment_indexes(profiles: PartitionedCollection) -> None:
    """The single-field indexes the segment queries' necessary conditions can use.

    Off on the embedded store by default (``PROFILEGATE_SEGMENT_INDEXES``): their upkeep on
    every profile write there has not been measured, and it filters in Python either way.
    """
    models = [IndexModel([(field, order)], name=field) for field, order in PREFILTER_INDEXES]
    for collection in profiles.all():
        await collection.create_indexes(models)

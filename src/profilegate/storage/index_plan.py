"""Every collection of the MongoDB layout and its indexes, to create them ahead of a deploy.

The gateway creates these itself when it starts or first writes a collection; on a large
replica set an index build is better started by an operator before the deploy
(``profilegate create-indexes``), or printed for mongosh (``--print``) with the commands that
shard the collections (storage/sharding.py). Index builds on a populated collection hold an
exclusive lock only at their start and end
(https://www.mongodb.com/docs/manual/core/index-creation/).
"""

import contextlib
import json
from dataclasses import dataclass

from pymongo import ASCENDING, IndexModel
from pymongo.errors import CollectionInvalid

from profilegate.storage.documents import Database
from profilegate.storage.indexes import INDEXES
from profilegate.storage.segment_members import DUE_INDEX
from profilegate.storage.segment_query import PREFILTER_INDEXES
from profilegate.storage.sharding import PLACEMENTS, shard_commands


@dataclass(frozen=True)
class Retentions:
    """The TTLs of the pruned collections, in seconds."""

    events: int
    changes: int
    tombstones: int
    audit: int


def _ttl(field: str, seconds: int) -> IndexModel:
    return IndexModel([(field, ASCENDING)], name="retention", expireAfterSeconds=seconds)


def planned_indexes(retentions: Retentions, *, segment_indexes: bool) -> dict[str, list[IndexModel]]:
    """Each collection of the MongoDB layout, with its secondary indexes (``_id`` comes with it)."""
    plan: dict[str, list[IndexModel]] = {name: [] for name in PLACEMENTS}
    for name, models in INDEXES.items():
        plan[name].extend(models)
    plan["events"].extend(
        [IndexModel([("profileId", ASCENDING)], name="profileId"), _ttl("receivedAt", retentions.events)]
    )
    plan["changes"].append(_ttl("at", retentions.changes))
    plan["audit"].extend(
        [_ttl("at", retentions.audit), IndexModel([("profileId", ASCENDING)], name="profileId")]
    )
    plan["tombstones"].append(_ttl("erasedAt", retentions.tombstones))
    plan["segment_members"].append(DUE_INDEX)
    if segment_indexes:
        plan["profiles"].extend(
            IndexModel([(field, order)], name=field) for field, order in PREFILTER_INDEXES
        )
    return plan


async def create_planned(database: Database, plan: dict[str, list[IndexModel]]) -> None:
    """Create every collection of ``plan`` that is missing, then its indexes (idempotent)."""
    existing = set(await database.list_collection_names())
    for name, models in plan.items():
        if name not in existing:
            with contextlib.suppress(CollectionInvalid):  # created meanwhile, by a gateway starting
                await database.create_collection(name)
        if models:
            await database[name].create_indexes(models)


def mongosh_script(database: str, plan: dict[str, list[IndexModel]]) -> str:
    """``plan`` as mongosh JavaScript: the collections, their indexes, then the shard commands."""
    lines = [f"db = db.getSiblingDB({json.dumps(database)});"]
    for name, models in plan.items():
        collection = f"db.getCollection({json.dumps(name)})"
        if not models:
            lines.append(f"db.createCollection({json.dumps(name)});")
        for model in models:
            spec = dict(model.document)
            keys = dict(spec.pop("key"))
            lines.append(f"{collection}.createIndex({json.dumps(keys)}, {json.dumps(spec)});")
    lines.append("// On a sharded cluster (mongos), after the indexes:")
    lines.extend(shard_commands(database))
    return "\n".join(lines) + "\n"

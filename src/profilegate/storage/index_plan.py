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

from pymongo import IndexModel
from pymongo.errors import CollectionInvalid

from profilegate.storage.coupons import CAMPAIGN_INDEX
from profilegate.storage.destinations import DEFAULT_DELIVERY_RETENTION_SECONDS
from profilegate.storage.documents import Database
from profilegate.storage.indexes import INDEXES, LOG_INDEXES, RETENTION_FIELDS
from profilegate.storage.layout import Retention, hold_ttl
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
    destination_deliveries: int = DEFAULT_DELIVERY_RETENTION_SECONDS


def planned_indexes(retentions: Retentions, *, segment_indexes: bool) -> dict[str, list[IndexModel]]:
    """Each collection of the MongoDB layout, with its secondary indexes (``_id`` comes with it)."""
    plan: dict[str, list[IndexModel]] = {name: [] for name in PLACEMENTS}
    for name, models in (*INDEXES.items(), *LOG_INDEXES.items()):
        plan[name].extend(models)
    for name, field in RETENTION_FIELDS.items():
        plan[name].append(Retention(field, getattr(retentions, name)).index())
    plan["segment_members"].append(DUE_INDEX)
    plan["coupons"].append(CAMPAIGN_INDEX)
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
        ttls = [model for model in models if "expireAfterSeconds" in model.document]
        for model in ttls:  # a retention changed since they were made is changed in place
            field, _ = next(iter(model.document["key"].items()))
            await hold_ttl(database[name], Retention(field, model.document["expireAfterSeconds"]))
        others = [model for model in models if model not in ttls]
        if others:
            await database[name].create_indexes(others)


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

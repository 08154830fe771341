"""Where each collection lives on a sharded cluster: its shard key, or unsharded, and why.

One place for it: the sharding test checks that every command the hot paths send to a
sharded collection carries its shard key (so mongos sends it to one shard), and
``profilegate create-indexes --print`` prints the ``sh.shardCollection`` commands from it.

Shard keys are hashed ``_id`` throughout: ids are opaque strings looked up by equality, and
hashing spreads ids that arrive in order (a client's time-ordered event ids) over every
shard. Only ``_id`` can be the key of a collection whose ``_id`` must stay unique across
shards: unless ``_id`` is the shard key (or its prefix), its index is unique per shard only
(https://www.mongodb.com/docs/manual/core/sharding-shard-key/ and
https://www.mongodb.com/docs/manual/reference/limits/#sharding-operational-restrictions). The logs
ordered by a counter (``changes``, ``audit``) stay unsharded: their ``_id`` grows by one, a
range key would put every insert on one shard and a hashed key would scatter every range
read, and they are small (the feed keeps days, the audit log admin actions only).
"""

from dataclasses import dataclass

HASHED = "hashed"


@dataclass(frozen=True)
class Placement:
    """``key``: the shard key's field (hashed), or None for an unsharded collection."""

    key: str | None
    why: str


SHARDED_ON_ID = "_id"

PLACEMENTS: dict[str, Placement] = {
    "profiles": Placement(SHARDED_ON_ID, "the bulk of the data; every hot read and write is by _id"),
    "profile_checkout": Placement(
        SHARDED_ON_ID, "one per profile; the checkout by profile id reads it by _id"
    ),
    "identity_keys": Placement(
        SHARDED_ON_ID,
        "one per identity; resolving and claiming an identity is by _id (its uniqueness), and so is"
        " the checkout by identity (the key carries its profile's checkout payload); the payload's"
        " rewrite after a profile write is one update command of several _id-targeted statements",
    ),
    "events": Placement(
        SHARDED_ON_ID,
        "the largest collection; _id is the event id, whose uniqueness makes a replay a duplicate,"
        " so it must be the key (reads by profileId: export, erasure, rebuild, go to every shard)",
    ),
    "tombstones": Placement(SHARDED_ON_ID, "every profile creation asks by _id"),
    "segment_members": Placement(
        SHARDED_ON_ID,
        "one per segment member; every profile write sets or deletes its own by _id (a page of a"
        " segment's members is one _id range, read from every shard and merged by mongos)",
    ),
    "coupons": Placement(
        SHARDED_ON_ID,
        "one per issued code; _id is the code, whose uniqueness makes codes unique, and a redemption"
        " is one conditional update by code (couponPerformance reads one campaign from every shard)",
    ),
    "changes": Placement(None, "ordered by a counter and read by _id range; days of retention"),
    "audit": Placement(None, "ordered by a counter and read newest first; admin actions only"),
    "merges": Placement(None, "one per merge, read by winner on profile pages; small"),
    "shop_days": Placement(
        None, "one per shop day and channel (a year: at most 366 x 7); read as one range by day"
    ),
    "segment_sizes": Placement(None, "one per segment and shop day, written by the hourly refresh; small"),
    "meta": Placement(None, "a few documents: the layout and the counters that order the logs"),
    "api_keys": Placement(None, "a few documents, cached by every gateway"),
    "segments": Placement(None, "a few documents, cached by every gateway"),
    "tier_policies": Placement(None, "a few documents, cached by every gateway"),
    "extension_definitions": Placement(None, "a few documents"),
    "coupon_campaigns": Placement(None, "one per coupon campaign, read when coupons are issued"),
    "persisted_operations": Placement(None, "a few documents, cached by every gateway"),
    "destinations": Placement(None, "a few documents, read by each process's deliverers"),
    "destination_state": Placement(None, "one per destination: cursor, lease and the batch in flight"),
    "destination_sent": Placement(
        None, "one per destination and profile sent to, read and written by _id once per batch"
    ),
    "destination_dead_letters": Placement(None, "batches a destination never took; few, read by destination"),
    "destination_deliveries": Placement(
        None, "ordered by a counter and read newest first per destination; days of retention"
    ),
}


def sharded() -> dict[str, str]:
    """Each sharded collection and its shard key's field."""
    return {name: placement.key for name, placement in PLACEMENTS.items() if placement.key is not None}


def shard_commands(database: str) -> list[str]:
    """The mongosh commands that shard the collections (``sh.enableSharding`` first).

    A collection that already holds documents needs an index on its shard key before
    ``shardCollection`` (https://www.mongodb.com/docs/manual/reference/method/sh.shardCollection/).
    """
    commands = [f'sh.enableSharding("{database}");']
    for name, key in sharded().items():
        commands.append(
            f'db.getSiblingDB("{database}").getCollection("{name}").createIndex({{ "{key}": "{HASHED}" }});'
        )
        commands.append(f'sh.shardCollection("{database}.{name}", {{ "{key}": "{HASHED}" }});')
    return commands

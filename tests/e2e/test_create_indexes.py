"""``profilegate create-indexes``: every collection and index of the MongoDB layout, created
ahead of a deploy on the database MONGODB_URI names, or printed for mongosh."""

import json
import re
from pathlib import Path

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.sharding import PLACEMENTS, sharded
from tests.api.test_gdpr import ERASE
from tests.api.test_sharding import hot_paths, open_shop
from tests.e2e.server import run_cli
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, running

DAY = 86_400
ID = ("_id_", (("_id", 1),), None)
# The indexes of a database prepared with the default retentions and segment indexes on.
EXPECTED: dict[str, set[tuple[str, tuple[tuple[str, int], ...], int | None]]] = {
    "profiles": {
        ID,
        ("aggregates.orders", (("aggregates.orders", 1),), None),
        ("aggregates.gross", (("aggregates.gross", 1),), None),
        ("aggregates.lastSeen", (("aggregates.lastSeen", 1),), None),
        ("aggregates.lastOrderAt", (("aggregates.lastOrderAt", 1),), None),
    },
    "profile_checkout": {ID},
    "identity_keys": {ID},
    "events": {ID, ("profileId", (("profileId", 1),), None), ("retention", (("receivedAt", 1),), 1130 * DAY)},
    "tombstones": {ID, ("retention", (("erasedAt", 1),), 1095 * DAY)},
    "segment_members": {ID, ("segment_until", (("segment", 1), ("until", 1)), None)},
    "coupons": {ID, ("campaign", (("campaign", 1),), None)},
    "coupon_campaigns": {ID},
    "changes": {ID, ("retention", (("at", 1),), 7 * DAY)},
    "audit": {ID, ("retention", (("at", 1),), 400 * DAY), ("profileId", (("profileId", 1),), None)},
    "shop_days": {ID},
    "segment_sizes": {ID},
    "merges": {ID, ("winner", (("winner", 1), ("at", -1)), None)},
    "meta": {ID},
    "api_keys": {ID, ("name", (("name", 1),), None)},
    "segments": {ID},
    "tier_policies": {ID},
    "extension_definitions": {ID},
    "persisted_operations": {ID},
    "destinations": {ID},
    "destination_state": {ID},
    "destination_sent": {ID},
    "destination_dead_letters": {ID, ("destination", (("destination", 1), ("at", -1)), None)},
    "destination_deliveries": {
        ID,
        ("destination", (("destination", 1),), None),
        ("retention", (("at", 1),), 30 * DAY),
    },
}
IDENTITY = {"type": "EMAIL", "value": "c2@example.com"}
STATEMENT = re.compile(
    r"^(?:db = db\.getSiblingDB\((?P<db>\"[^\"]+\")\);"
    r"|db\.createCollection\((?P<created>\"[^\"]+\")\);"
    r"|db\.getCollection\((?P<indexed>\"[^\"]+\")\)\.createIndex\((?P<keys>\{.*\}), (?P<options>\{.*\})\);"
    r"|// .*"
    r"|sh\.enableSharding\((?P<sharded_db>\"[^\"]+\")\);"
    r"|db\.getSiblingDB\(\"[^\"]+\"\)\.getCollection\((?P<keyed>\"[^\"]+\")\)\.createIndex\((?P<shard_index>\{.*\})\);"
    r"|sh\.shardCollection\((?P<namespace>\"[^\"]+\"), (?P<shard_key>\{.*\})\);)$"
)


async def indexes(database: Database) -> dict[str, set[tuple[str, tuple[tuple[str, int], ...], int | None]]]:
    listed: dict[str, set[tuple[str, tuple[tuple[str, int], ...], int | None]]] = {}
    for name in await database.list_collection_names():
        async for index in await database[name].list_indexes():
            keys = tuple((field, int(order)) for field, order in index["key"].items())
            listed.setdefault(name, set()).add((index["name"], keys, index.get("expireAfterSeconds")))
    return listed


async def test_create_indexes_creates_every_collection_and_index(
    store_uri: str, database_name: str, database: Database, tmp_path: Path
) -> None:
    env = {"MONGODB_URI": store_uri, "PROFILEGATE_DATABASE": database_name}

    created = run_cli("create-indexes", cwd=tmp_path, env=env)
    again = run_cli("create-indexes", cwd=tmp_path, env=env)

    assert created.returncode == 0, created.stderr
    assert f"24 collections and 17 indexes ready in {database_name}" in created.stderr
    assert again.returncode == 0, again.stderr
    assert await indexes(database) == EXPECTED


async def test_create_indexes_applies_a_changed_retention_in_place(
    store_uri: str, database_name: str, database: Database, tmp_path: Path
) -> None:
    env = {"MONGODB_URI": store_uri, "PROFILEGATE_DATABASE": database_name}
    first = run_cli("create-indexes", cwd=tmp_path, env=env)
    changed = run_cli("create-indexes", cwd=tmp_path, env={**env, "PROFILEGATE_EVENT_RETENTION_DAYS": "400"})

    assert first.returncode == 0, first.stderr
    assert changed.returncode == 0, changed.stderr
    listed = await indexes(database)
    assert ("retention", (("receivedAt", 1),), 400 * DAY) in listed["events"]
    assert listed["changes"] == EXPECTED["changes"]
    assert await load_layout(database, Layout.embedded(7, 250)) == Layout(), "laid out for MongoDB"


async def test_the_gateway_finds_the_indexes_it_needs_and_adds_none(
    store_uri: str, database_name: str, database: Database, tmp_path: Path, clock: FrozenClock
) -> None:
    created = run_cli(
        "create-indexes", cwd=tmp_path, env={"MONGODB_URI": store_uri, "PROFILEGATE_DATABASE": database_name}
    )
    assert created.returncode == 0, created.stderr
    settings = Settings(
        mongodb_uri=store_uri, database=database_name, admin_key=ADMIN_KEY, key_cache_seconds=0
    )

    async with running(create_app(settings, clock=clock)) as http:
        gateway = GatewayClient(http)
        await hot_paths(gateway, await open_shop(gateway), clock.now)
        erased = await gateway.execute(ERASE, {"ref": {"identity": IDENTITY}, "reason": "request"})
        assert erased.data["eraseProfile"]["__typename"] == "ProfileErased"

    assert await indexes(database) == EXPECTED


async def test_create_indexes_refuses_a_database_laid_out_for_the_embedded_store(
    store_uri: str, database_name: str, database: Database, tmp_path: Path
) -> None:
    await load_layout(database, Layout.embedded(4, 5_000))

    refused = run_cli(
        "create-indexes", cwd=tmp_path, env={"MONGODB_URI": store_uri, "PROFILEGATE_DATABASE": database_name}
    )

    assert refused.returncode == 1
    assert f"database {database_name} is laid out for the embedded store" in refused.stderr
    assert set(await database.list_collection_names()) == {"meta"}


def test_create_indexes_without_mongodb_uri_says_what_it_needs(tmp_path: Path) -> None:
    refused = run_cli("create-indexes", cwd=tmp_path)

    assert refused.returncode == 2
    assert "set MONGODB_URI" in refused.stderr


def test_create_indexes_print_is_mongosh_for_every_collection_and_shard_key(tmp_path: Path) -> None:
    printed = run_cli(
        "create-indexes",
        "--print",
        cwd=tmp_path,
        env={"PROFILEGATE_DATABASE": "shop", "PROFILEGATE_CHANGE_RETENTION_DAYS": "3"},
    )

    assert printed.returncode == 0, printed.stderr
    matches = [STATEMENT.match(line) for line in printed.stdout.splitlines()]
    assert all(matches), [line for line, m in zip(printed.stdout.splitlines(), matches, strict=True) if not m]
    groups = [m.groupdict() for m in matches if m]
    assert printed.stdout.startswith('db = db.getSiblingDB("shop");')
    named = {json.loads(g["created"] or g["indexed"]) for g in groups if g["created"] or g["indexed"]}
    assert named == set(PLACEMENTS)
    ttls = {
        json.loads(g["indexed"]): json.loads(g["options"])["expireAfterSeconds"]
        for g in groups
        if g["options"] and "expireAfterSeconds" in g["options"]
    }
    assert ttls == {
        "events": 1130 * DAY,
        "tombstones": 1095 * DAY,
        "changes": 3 * DAY,
        "audit": 400 * DAY,
        "destination_deliveries": 30 * DAY,
    }
    shard_keys = {json.loads(g["namespace"]): json.loads(g["shard_key"]) for g in groups if g["namespace"]}
    assert shard_keys == {f"shop.{name}": {key: "hashed"} for name, key in sharded().items()}

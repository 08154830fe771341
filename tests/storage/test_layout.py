"""The storage layout: its kind stored at first use and kept, a mismatching explicit setting
refused, TTL indexes changed in place when a retention changes."""

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.layout import (
    LAYOUT_ID,
    MAX_TTL_SECONDS,
    TTL_INDEX,
    Layout,
    LayoutKind,
    LayoutMismatch,
    Retention,
    hold_ttl,
    load_layout,
)
from profilegate.storage.store import open_client, prepare
from tests.gateway import running

EMBEDDED = Layout.embedded(4, 100)


async def ttl_of(database: Database, name: str) -> int:
    return int((await database[name].index_information())[TTL_INDEX]["expireAfterSeconds"])


@pytest.mark.parametrize(("first", "then"), [(EMBEDDED, Layout()), (Layout(), EMBEDDED)])
async def test_a_database_keeps_the_layout_it_was_first_used_in(
    database: Database, first: Layout, then: Layout
) -> None:
    assert await load_layout(database, first) == first
    assert await load_layout(database, then) == first
    stored = await database["meta"].find_one({"_id": LAYOUT_ID})
    assert stored is not None
    assert stored["kind"] == first.kind.value


async def test_an_explicit_layout_other_than_the_stored_one_is_refused(database: Database) -> None:
    await prepare(database, Layout())

    with pytest.raises(LayoutMismatch, match="first used in the mongodb layout; PROFILEGATE_STORAGE_LAYOUT"):
        await prepare(database, EMBEDDED, explicit=True)
    assert (await prepare(database, Layout(), explicit=True)).changes.streams_changes


async def test_a_gateway_asked_for_another_layout_than_its_database_s_does_not_start(
    settings: Settings, database: Database
) -> None:
    other = LayoutKind.MONGODB if settings.layout_kind is LayoutKind.EMBEDDED else LayoutKind.EMBEDDED
    await load_layout(database, settings.layout)
    mismatched = settings.model_copy(update={"storage_layout": other, "store_partitions": None})

    with pytest.raises(LayoutMismatch, match=f"PROFILEGATE_STORAGE_LAYOUT={other.value} does not match"):
        async with running(create_app(mismatched)):
            pass


@pytest.mark.parametrize(
    ("stored", "kind"),
    [
        ({"partitions": 16, "eventSegmentSize": 250}, LayoutKind.EMBEDDED),
        ({"partitions": 1}, LayoutKind.MONGODB),
    ],
)
async def test_a_layout_stored_before_kinds_were_is_read_by_its_shape(
    database: Database, stored: dict[str, int], kind: LayoutKind
) -> None:
    await database["meta"].insert_one({"_id": LAYOUT_ID, **stored})

    assert (await load_layout(database, Layout())).kind is kind


async def test_a_changed_retention_changes_the_ttl_index_and_keeps_the_documents(database: Database) -> None:
    collection = database["kept"]
    await hold_ttl(collection, Retention("at", 86_400))
    await collection.insert_one({"_id": "a", "at": datetime.now(UTC)})

    assert await hold_ttl(collection, Retention("at", 86_400))
    assert not await hold_ttl(collection, Retention("at", 2 * 86_400))
    assert await ttl_of(database, "kept") == 2 * 86_400
    assert await collection.count_documents({}) == 1


async def test_an_absent_ttl_index_is_left_absent_unless_asked_to_create(database: Database) -> None:
    await database["plain"].insert_one({"_id": "a"})

    assert not await hold_ttl(database["plain"], Retention("at", 60), create=False)
    assert TTL_INDEX not in await database["plain"].index_information()


@pytest.mark.parametrize("seconds", [-1, MAX_TTL_SECONDS + 1])
def test_a_retention_a_ttl_index_cannot_hold_is_refused(seconds: int) -> None:
    with pytest.raises(ValueError, match="does not fit expireAfterSeconds"):
        Retention("at", seconds)


@pytest.fixture
async def replica_set(database_name: str) -> AsyncIterator[Database]:
    """A database of its own on the replica set MONGODB_URI names (``scripts/check --mongodb``)."""
    uri = os.environ.get("MONGODB_URI")
    if uri is None:
        pytest.fail("the tests marked mongodb run against the replica set MONGODB_URI names")
    client = open_client(uri)
    try:
        yield client[database_name]
        await client.drop_database(database_name)
    finally:
        await client.close()


@pytest.mark.mongodb
async def test_on_mongodb_a_changed_retention_is_applied_with_coll_mod(replica_set: Database) -> None:
    collection = replica_set["kept"]
    await hold_ttl(collection, Retention("at", 86_400))
    before = await collection.index_information()

    assert not await hold_ttl(collection, Retention("at", 3 * 86_400))
    after = await collection.index_information()
    assert after[TTL_INDEX]["expireAfterSeconds"] == 3 * 86_400
    assert after[TTL_INDEX]["key"] == before[TTL_INDEX]["key"]

"""Profiles and identity keys spread over ``<name>_pNNN`` collections by a stable hash of ``_id``."""

import re
from datetime import datetime

import pytest

from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout, load_layout
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.store import Repositories, prepare
from tests.conftest import EMBEDDED_TEST_LAYOUT, TEST_PARTITIONS

PARTITION_NAME = re.compile(r"^(profiles|identity_keys)_p\d{3}$")


@pytest.fixture
async def repos(database: Database) -> Repositories:
    """Partitions are the embedded layout's, whichever layout the other tests run in."""
    return await prepare(database, EMBEDDED_TEST_LAYOUT)


def profile(profile_id: str, now: datetime) -> Profile:
    return Profile(
        id=profile_id,
        identities=(Identity(type=IdentityType.CUSTOMER_ID, value=profile_id),),
        traits={"n": profile_id},
        created_at=now,
        updated_at=now,
    )


async def collections_holding(database: Database, prefix: str, document_id: str) -> list[str]:
    names = [name for name in await database.list_collection_names() if name.startswith(prefix)]
    return [name for name in names if await database[name].count_documents({"_id": document_id}) == 1]


async def test_each_profile_lands_in_exactly_one_partition(
    repos: Repositories, database: Database, now: datetime
) -> None:
    ids = [f"profile-{index:02d}" for index in range(40)]
    for profile_id in ids:
        await repos.profiles.insert(profile(profile_id, now))

    names = set(await database.list_collection_names())
    profile_collections = {name for name in names if name.startswith("profiles")}
    assert profile_collections == {f"profiles_p{index:03d}" for index in range(TEST_PARTITIONS)}
    assert "profiles" not in names
    counts = [await database[name].count_documents({}) for name in sorted(profile_collections)]
    assert sum(counts) == len(ids)
    assert all(count > 0 for count in counts), counts
    for profile_id in ids:
        assert len(await collections_holding(database, "profiles", profile_id)) == 1


async def test_routing_is_stable(repos: Repositories, database: Database, now: datetime) -> None:
    routing = PartitionedCollection(database, "profiles", TEST_PARTITIONS)
    ids = [f"stable-{index}" for index in range(12)]
    for profile_id in ids:
        await repos.profiles.insert(profile(profile_id, now))

    for profile_id in ids:
        expected = routing.for_id(profile_id).name
        assert PARTITION_NAME.match(expected)
        assert await collections_holding(database, "profiles", profile_id) == [expected]
        assert routing.for_id(profile_id).name == expected
        assert (
            PartitionedCollection(database, "profiles", TEST_PARTITIONS).for_id(profile_id).name == expected
        )


async def test_identity_keys_are_partitioned_too(
    repos: Repositories, database: Database, now: datetime
) -> None:
    keys = [f"email:shopper{index}@example.com" for index in range(20)]
    for key in keys:
        assert await repos.identity_keys.claim(key, "p-1", now) == "p-1"

    names = {name for name in await database.list_collection_names() if name.startswith("identity_keys")}
    assert names
    assert all(PARTITION_NAME.match(name) for name in names), names
    for key in keys:
        assert len(await collections_holding(database, "identity_keys", key)) == 1


async def test_one_partition_is_the_plain_collection(database: Database) -> None:
    single = PartitionedCollection(database, "profiles", 1)

    assert [collection.name for collection in single.all()] == ["profiles"]
    assert single.for_id("anything").name == "profiles"


async def test_layout_is_fixed_on_first_use(database: Database) -> None:
    first = Layout.embedded(7, 500)
    assert await load_layout(database, first) == first
    assert await load_layout(database, Layout.embedded(3, 100)) == first
    assert await load_layout(database, first) == first
    assert await database["meta"].count_documents({}) == 1


async def test_reopening_with_another_count_still_finds_every_profile(
    repos: Repositories, database: Database, now: datetime
) -> None:
    ids = [f"reopen-{index}" for index in range(12)]
    for profile_id in ids:
        await repos.profiles.insert(profile(profile_id, now))

    reopened = await prepare(database, Layout.embedded(TEST_PARTITIONS * 4, 100))

    for profile_id in ids:
        found = await reopened.profiles.get(profile_id)
        assert found is not None
        assert found.id == profile_id
    names = {name for name in await database.list_collection_names() if name.startswith("profiles")}
    assert len(names) == TEST_PARTITIONS

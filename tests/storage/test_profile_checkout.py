"""The checkout copy of a profile: what a tier needs, small, never older than the profile's last write."""

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile
from profilegate.domain.tiers import day_number
from profilegate.service.tracking import track
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.store import Repositories, open_client, prepare
from tests.conftest import TEST_LAYOUT
from tests.service.raw_events import email_ref, order

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def profile(version: int = 1, gross: int = 10_000) -> Profile:
    daily = {
        "2026-11-01": DayBucket(orders=1, gross=gross, order_returns=500),
        "2026-11-02": DayBucket(counts={"page_view": 3}),
    }
    grant = ExtensionGrant(name="vip", at=NOW, by="ops", reason="top", expires_at=NOW + timedelta(days=3))
    return Profile(
        id="p-1",
        extensions={"vip": grant},
        aggregates=Aggregates(daily=daily),
        version=version,
        created_at=NOW,
        updated_at=NOW,
    )


def checkout(database: Database) -> PartitionedCollection:
    return TEST_LAYOUT.partitioned(database, "profile_checkout")


async def test_the_view_holds_net_spend_per_order_day_and_the_extensions(repos: Repositories) -> None:
    await repos.profiles.insert(profile())
    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 9_500}
    assert view.extensions == profile().extensions
    assert view.merged_into is None


async def test_a_write_refreshes_it_and_an_older_version_never_overwrites_a_newer(
    repos: Repositories,
) -> None:
    await repos.profiles.insert(profile())
    newer = profile(version=2, gross=50_000)
    assert await repos.profiles.replace_fields(newer, expected_version=1)
    await repos.profiles.refresh_checkout(profile(version=1))  # a late, older writer
    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 49_500}


async def test_without_its_checkout_copy_the_profile_itself_answers(
    repos: Repositories, database: Database
) -> None:
    await repos.profiles.insert(profile())
    await checkout(database).for_id("p-1").delete_one({"_id": "p-1"})
    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 9_500}


async def test_a_replay_heals_a_copy_left_behind_by_a_write_that_died(
    repos: Repositories, database: Database
) -> None:
    tracking = Settings(mongodb_uri="mongodb://unused").tracking_rules
    batch = [order("e-1", "o-1", "80.00", NOW - timedelta(days=3), email_ref("ann@example.com"))]
    await track(repos, batch, tracking, NOW)
    profile_id = (await repos.identity_keys.owner("email:ann@example.com")) or ""
    before = await repos.profiles.loyalty_view(profile_id)
    # the process died after the profile's write, before its checkout copy was written
    await (
        checkout(database)
        .for_id(profile_id)
        .update_one({"_id": profile_id}, {"$set": {"spend": b"", "version": 1}})
    )
    stale = await repos.profiles.loyalty_view(profile_id)
    assert stale is not None
    assert stale.spend == {}

    replayed = await track(repos, batch, tracking, NOW)

    assert [outcome.status.value for outcome in replayed.results] == ["duplicate"]
    assert await repos.profiles.loyalty_view(profile_id) == before


async def test_concurrent_writes_of_many_versions_end_with_the_newest(repos: Repositories) -> None:
    versions = list(range(1, 41))
    random.Random(17).shuffle(versions)

    await asyncio.gather(*(repos.profiles.refresh_checkout(profile(v, 1_000 * v)) for v in versions))

    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 1_000 * 40 - 500}


async def test_racing_first_writes_of_many_profiles_end_with_the_newest(repos: Repositories) -> None:
    """Each profile's first checkout document is written by eight versions at once: on MongoDB
    the upserts that lose the insert race fail with a duplicate key and must be made again."""
    writes = [
        profile(v, 1_000 * v).model_copy(update={"id": f"p-{n}"}) for n in range(50) for v in range(1, 9)
    ]
    random.Random(6).shuffle(writes)

    await asyncio.gather(*(repos.profiles.refresh_checkout(write) for write in writes))

    views = [await repos.profiles.loyalty_view(f"p-{n}") for n in range(50)]
    assert {None if view is None else view.spend[day_number(date(2026, 11, 1))] for view in views} == {7_500}


async def test_a_stale_write_after_a_newer_one_leaves_the_newer(repos: Repositories) -> None:
    await repos.profiles.refresh_checkout(profile(version=5, gross=50_000))
    await repos.profiles.refresh_checkout(profile(version=4, gross=40_000))
    await repos.profiles.refresh_checkout(profile(version=5, gross=1))  # the same version again

    view = await repos.profiles.loyalty_view("p-1")
    assert view is not None
    assert view.spend == {day_number(date(2026, 11, 1)): 49_500}


@pytest.fixture
async def replica_set() -> AsyncIterator[list[Repositories]]:
    """Eight clients of their own on one database of the replica set MONGODB_URI names, so
    that the server runs their writes in parallel (the embedded store does not interleave an
    upsert's match and insert)."""
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.fail("tests marked mongodb run against the replica set MONGODB_URI names")
    name = f"test_{uuid.uuid4().hex[:12]}"
    clients = [open_client(uri) for _ in range(8)]
    try:
        yield [await prepare(client[name], Layout()) for client in clients]
    finally:
        await clients[0].drop_database(name)
        for client in clients:
            await client.close()


@pytest.mark.mongodb
async def test_first_writes_racing_on_a_replica_set_end_with_the_newest(
    replica_set: list[Repositories],
) -> None:
    """On MongoDB an upsert whose filter is not equalities on ``_id`` alone is not retried when
    it loses the insert race: the older version's document stayed before the fix."""
    writes = [
        (v % len(replica_set), profile(v, 1_000 * v).model_copy(update={"id": f"p-{n}"}))
        for n in range(200)
        for v in range(1, 9)
    ]
    random.Random(6).shuffle(writes)

    await asyncio.gather(*(replica_set[client].profiles.refresh_checkout(write) for client, write in writes))

    views = [await replica_set[0].profiles.loyalty_view(f"p-{n}") for n in range(200)]
    assert {None if view is None else view.spend[day_number(date(2026, 11, 1))] for view in views} == {7_500}

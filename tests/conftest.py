"""Shared fixtures: one embedded store per session (in memory, over the wire), one database per test.

The storage layout of ``repos``, ``fresh_repositories`` and ``settings`` comes from one switch,
the environment variable ``PROFILEGATE_TEST_LAYOUT``: ``embedded`` (the default: partitioned
collections, segmented logs) or ``mongodb`` (one collection each, TTL indexes), e.g.
``PROFILEGATE_TEST_LAYOUT=mongodb .venv/bin/pytest tests/storage tests/service``.
``scripts/check`` runs the storage and service tests in both.
"""

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from profilegate.app import create_app
from profilegate.embedded import EmbeddedStore
from profilegate.service.profiles import ProfileRules
from profilegate.settings import Settings
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout, LayoutKind
from profilegate.storage.store import Repositories, open_client, prepare
from tests.gateway import ADMIN_KEY, FrozenClock, GatewayClient, running

TEST_PARTITIONS = 4
TEST_EVENT_SEGMENT = 100
EMBEDDED_TEST_LAYOUT = Layout.embedded(TEST_PARTITIONS, TEST_EVENT_SEGMENT)
TEST_LAYOUT_KIND = LayoutKind(os.environ.get("PROFILEGATE_TEST_LAYOUT", LayoutKind.EMBEDDED.value))
TEST_LAYOUT = EMBEDDED_TEST_LAYOUT if TEST_LAYOUT_KIND is LayoutKind.EMBEDDED else Layout()
# The embedded store pays O(collection size) per new document (DESIGN sec. 2): in the mongodb
# layout a long insert into one big collection can hold up its answer to the driver's
# heartbeat past connectTimeoutMS (20 s), and the driver then cancels every operation in
# flight. The slow layout gets longer to answer.
SLOW_STORE_OPTIONS = "&connectTimeoutMS=120000" if TEST_LAYOUT_KIND is LayoutKind.MONGODB else ""
# The tests' clocks stand still in November 2026 while the store's TTL monitor reads the real
# clock: ten years keep what a test writes (the tests of the TTLs themselves choose their own).
TEST_RETENTION_SECONDS = 3650 * 86_400


async def prepare_for_test(database: Database, layout: Layout = TEST_LAYOUT) -> Repositories:
    """The repositories on ``database``, in the layout under test, keeping what the tests write."""
    return await prepare(
        database,
        layout,
        event_retention_seconds=TEST_RETENTION_SECONDS,
        change_retention_seconds=TEST_RETENTION_SECONDS,
        tombstone_retention_seconds=TEST_RETENTION_SECONDS,
        audit_retention_seconds=TEST_RETENTION_SECONDS,
    )


def layout_with_segments(size: int) -> Layout:
    """The layout under test, with segments of ``size`` places where it has segments."""
    if TEST_LAYOUT.event_segment_size is None:
        return TEST_LAYOUT
    return Layout.embedded(TEST_LAYOUT.partitions, size)


@pytest.fixture(scope="session")
def store_uri() -> Iterator[str]:
    with EmbeddedStore(data_dir=None, engine="memory") as store:
        assert store.uri is not None
        yield store.uri + SLOW_STORE_OPTIONS


@pytest.fixture
def database_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def database(store_uri: str, database_name: str) -> AsyncIterator[Database]:
    client = open_client(store_uri)
    try:
        yield client[database_name]
        await client.drop_database(database_name)
    finally:
        await client.close()


@pytest.fixture
async def repos(database: Database) -> Repositories:
    return await prepare_for_test(database)


@contextlib.asynccontextmanager
async def fresh_repositories(store_uri: str) -> AsyncIterator[Repositories]:
    """A database of its own, for each example of a property test (fixtures last a whole test)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client = open_client(store_uri)
    try:
        yield await prepare_for_test(client[name])
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def rules() -> ProfileRules:
    settings = Settings(mongodb_uri="mongodb://unused")
    return ProfileRules(settings.trait_limits, settings.max_identities_per_profile, settings.consent_purposes)


@pytest.fixture
def clock(now: datetime) -> FrozenClock:
    return FrozenClock(now)


@pytest.fixture
def settings(store_uri: str, database_name: str) -> Settings:
    return Settings(
        mongodb_uri=store_uri,
        database=database_name,
        admin_key=ADMIN_KEY,
        storage_layout=TEST_LAYOUT_KIND,
        store_partitions=TEST_LAYOUT.partitions if TEST_LAYOUT.event_segment_size else None,
        event_segment_size=TEST_LAYOUT.event_segment_size,
        key_cache_seconds=0,
    )


@pytest.fixture
async def gateway(settings: Settings, clock: FrozenClock, store_uri: str) -> AsyncIterator[GatewayClient]:
    async with running(create_app(settings, clock=clock)) as http:
        yield GatewayClient(http)
    cleanup = open_client(store_uri)
    await cleanup.drop_database(settings.database)
    await cleanup.close()


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)

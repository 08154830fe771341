"""Batches at and past the embedded store's limits on one command, tracked whole in both layouts.

Each limit (docs/limits.md) is met at its edge and one past it: the paths of one update (63
``$set``, 126 ``$unset``: SQLite's 127 function arguments), and the values of one ``$in`` (495:
SQLite's expression depth of 1,000); the code packs or splits, so both sides are accepted.
"""

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from profilegate.domain.events import EventRules
from profilegate.service.tracking import Status, TrackingRules, track
from profilegate.settings import Settings
from profilegate.storage.command_limits import MAX_IN_VALUES, MAX_SET_PATHS, STORE_IN_VALUES
from profilegate.storage.store import Repositories, open_client
from tests.conftest import prepare_for_test
from tests.service.raw_events import email_ref, event, order
from tests.service.test_rebuild import all_profiles, profile_of
from tests.sqlite_store import sqlite_store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# Fixed fields of a tracking update beside its day buckets (aggregates, guard, version,
# updatedAt, lastWrite): one day more than this is past the store's 63 paths.
DAYS_AT_THE_EDGE = MAX_SET_PATHS - 5


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from sqlite_store(tmp_path_factory.mktemp("store"))


@pytest.fixture
async def sqlite_repos(sqlite_uri: str) -> AsyncIterator[Repositories]:
    client = open_client(sqlite_uri)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield await prepare_for_test(client[name])
        await client.drop_database(name)
    finally:
        await client.close()


def tracking() -> TrackingRules:
    profiles = Settings(mongodb_uri="mongodb://unused").profile_rules
    return TrackingRules(events=EventRules(), profiles=profiles, retention_days=1_130)


def orders_on_days(email: str, days: int, prefix: str = "o") -> list[dict[str, Any]]:
    ann = email_ref(email)
    return [
        order(f"{prefix}{d}", f"{prefix}-{d}", "10.00", NOW - timedelta(days=d), ann) for d in range(days)
    ]


async def accepted_whole(repos: Repositories, events: list[dict[str, Any]]) -> None:
    result = await track(repos, events, tracking(), NOW)
    assert result.count(Status.ACCEPTED) == len(events), [r for r in result.results if r.reason][:3]


@pytest.mark.parametrize("days", [DAYS_AT_THE_EDGE, DAYS_AT_THE_EDGE + 1, 500])
async def test_a_new_customer_with_orders_on_many_days(sqlite_repos: Repositories, days: int) -> None:
    await accepted_whole(sqlite_repos, orders_on_days("ann@example.com", days))
    ann = await profile_of(sqlite_repos, "ann@example.com")
    assert ann.aggregates.orders == days
    assert len(ann.aggregates.daily) == days


@pytest.mark.parametrize("days", [DAYS_AT_THE_EDGE, DAYS_AT_THE_EDGE + 1, 400])
async def test_a_known_customer_gets_orders_on_many_new_days(sqlite_repos: Repositories, days: int) -> None:
    await accepted_whole(sqlite_repos, orders_on_days("ann@example.com", 1, "first"))
    await accepted_whole(sqlite_repos, orders_on_days("ann@example.com", days))
    assert (await profile_of(sqlite_repos, "ann@example.com")).aggregates.orders == days + 1


@pytest.mark.parametrize("customers", [MAX_IN_VALUES, MAX_IN_VALUES + 1, STORE_IN_VALUES + 1, 500])
async def test_new_customers_in_one_batch(sqlite_repos: Repositories, customers: int) -> None:
    views = [
        event(f"v{c}", "product_view", NOW, email_ref(f"c{c}@example.com"), sku="A1", category="shoes")
        for c in range(customers)
    ]
    await accepted_whole(sqlite_repos, views)
    again = await track(sqlite_repos, views, tracking(), NOW)
    assert again.count(Status.DUPLICATE) == customers
    assert len(await all_profiles(sqlite_repos)) == customers


async def test_500_categories_in_one_batch(sqlite_repos: Repositories) -> None:
    views = [
        event(f"v{i}", "product_view", NOW, email_ref("ann@example.com"), sku=f"S{i}", category=f"cat-{i}")
        for i in range(500)
    ]
    await accepted_whole(sqlite_repos, views)
    assert len((await profile_of(sqlite_repos, "ann@example.com")).aggregates.categories) == 500

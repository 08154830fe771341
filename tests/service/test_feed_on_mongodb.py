"""The change stream that wakes the follower, on a real replica set (the embedded store has none).

Run against any replica set: ``MONGODB_URI=mongodb://host:27017/?replicaSet=rs0 .venv/bin/pytest
-m mongodb tests/service/test_feed_on_mongodb.py``. The follower polls only every minute here,
so a change delivered at once was woken by the stream.
"""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from profilegate.domain.changes import Change, ChangeKind, NewChange
from profilegate.service.feed import FeedFollower, FeedRules, follow
from profilegate.storage.changes import ChangeLog, change_log
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout
from profilegate.storage.store import open_client

pytestmark = pytest.mark.mongodb

SLOW_POLL_SECONDS = 60.0
WAKE_SECONDS = 1.0
ATTEMPTS = 20


@pytest.fixture
async def replica_set_database() -> AsyncIterator[Database]:
    uri = os.environ.get("MONGODB_URI")
    assert uri, "the mongodb tests need MONGODB_URI pointing at a replica set"
    client = open_client(uri)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
        await client.drop_database(name)
    finally:
        await client.close()


def entry(n: int) -> NewChange:
    return NewChange(
        at=datetime.now(UTC), kind=ChangeKind.EVENT_TRACKED, profile_id="p", payload={"n": n}, shareable=True
    )


async def collect(changes: AsyncIterator[Change], into: asyncio.Queue[Change]) -> None:
    async for change in changes:
        await into.put(change)


async def woken(log: ChangeLog, received: asyncio.Queue[Change], first: int) -> int:
    """Append changes until one arrives within ``WAKE_SECONDS`` (the stream may still be
    opening); the number of the one that arrived."""
    for n in range(first, first + ATTEMPTS):
        await log.append([entry(n)])
        with contextlib.suppress(TimeoutError):
            change = await asyncio.wait_for(received.get(), WAKE_SECONDS)
            return int(change.payload["n"])
    raise AssertionError(f"no change stream woke the follower in {ATTEMPTS} tries")


async def test_the_stream_wakes_the_follower_and_is_reopened_after_an_invalidate(
    replica_set_database: Database,
) -> None:
    log = change_log(Layout(), replica_set_database, 86_400)
    rules = FeedRules(poll_seconds=SLOW_POLL_SECONDS, stream_retry_seconds=0.1)
    follower = FeedFollower(log, rules)
    stopping = asyncio.Event()
    running = asyncio.create_task(follower.run(stopping))
    try:
        async with follower.subscribe() as subscription:
            received: asyncio.Queue[Change] = asyncio.Queue()
            collector = asyncio.create_task(
                collect(follow(follower, subscription, subscription.start, lambda _: True), received)
            )
            await woken(log, received, first=0)
            assert follower.stream_restarts == {}, "the stream, not a retry, woke the follower"
            # Dropping the collection invalidates the stream
            # (https://www.mongodb.com/docs/manual/reference/change-events/invalidate/).
            await replica_set_database.drop_collection("changes")
            for _ in range(ATTEMPTS):
                if follower.stream_restarts.get("invalidated"):
                    break
                await asyncio.sleep(WAKE_SECONDS / 4)
            assert follower.stream_restarts.get("invalidated") == 1, follower.stream_restarts
            while not received.empty():
                received.get_nowait()  # what the wake after the invalidate passed on
            await woken(log, received, first=100)
            collector.cancel()
    finally:
        stopping.set()
        follower.wake()
        await running

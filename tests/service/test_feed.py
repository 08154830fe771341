"""Following the feed: holes waited for, other processes' writes polled, lagging subscribers cut off."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from profilegate.domain.changes import Change, ChangeKind, NewChange
from profilegate.service.feed import FeedFollower, FeedRules, SubscriberLagged, follow
from profilegate.storage.changes import COUNTER, ChangeLog, change_log
from profilegate.storage.documents import Database
from profilegate.storage.layout import Layout, Retention
from profilegate.storage.store import open_client
from tests.conftest import layout_with_segments

NOW = datetime.now(UTC)  # the TTL index of one collection removes changes a day before now


def entry(n: int, at: datetime = NOW) -> NewChange:
    return NewChange(at=at, kind=ChangeKind.EVENT_TRACKED, profile_id="p", payload={"n": n}, shareable=True)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed_log(database: Database, segment_size: int) -> ChangeLog:
    return change_log(layout_with_segments(segment_size), database, 86_400)


def everything(change: Change) -> bool:
    return True


@contextlib.asynccontextmanager
async def running(follower: FeedFollower) -> AsyncIterator[FeedFollower]:
    stopping = asyncio.Event()
    task = asyncio.create_task(follower.run(stopping))
    try:
        yield follower
    finally:
        stopping.set()
        follower.wake()
        await task


async def drain(subscription_changes: AsyncIterator[Change], count: int) -> list[int]:
    return [(await asyncio.wait_for(anext(subscription_changes), 5)).payload["n"] for _ in range(count)]


async def test_a_hole_is_waited_for_then_passed_in_order(database: Database) -> None:
    log, clock = feed_log(database, 10), Clock()
    follower = FeedFollower(log, FeedRules(hole_seconds=5.0), clock)
    await follower.start()
    async with follower.subscribe() as subscription:
        await database["meta"].update_one({"_id": COUNTER}, {"$inc": {"next": 1}}, upsert=True)  # place 1
        await log.append([entry(2)])  # place 2 is stored before place 1
        await follower.advance()
        assert follower.position == 0
        assert (await log.append([entry(3)]))[0].seq == 3
        clock.now = 4.0
        await follower.advance()
        assert follower.position == 0, "waiting within the grace"
        clock.now = 10.0
        await follower.advance()
        assert follower.position == 3, "a writer that never came is passed after the grace"
        received = [await subscription.next() for _ in range(2)]
    assert [c.seq for c in received if c is not None] == [2, 3]


async def test_a_filled_hole_is_delivered_in_place_order(database: Database) -> None:
    appended = layout_with_segments(10).log(database, COUNTER, Retention("at", 86_400, whole_segments=True))
    log = ChangeLog(appended)
    follower = FeedFollower(log, FeedRules(hole_seconds=60.0))
    await follower.start()
    async with follower.subscribe() as subscription:
        await database["meta"].update_one({"_id": COUNTER}, {"$inc": {"next": 1}}, upsert=True)  # place 1
        await log.append([entry(2)])
        await follower.advance()
        assert follower.position == 0
        slow = Change(seq=1, **entry(1).model_dump())
        ((holding_place_1, _),) = await appended.placed([1], [slow])
        await holding_place_1.insert_one(
            {
                "_id": f"{1:015d}",
                "at": slow.at,
                "kind": slow.kind.value,
                "profileId": "p",
                "payload": {"n": 1},
            }
        )
        await follower.advance()
        received = [await subscription.next() for _ in range(2)]
    assert [c.payload["n"] for c in received if c is not None] == [1, 2]


async def test_another_process_s_writes_arrive_by_polling(database: Database, store_uri: str) -> None:
    other_client = open_client(store_uri)
    try:
        writer = feed_log(other_client[database.name], 10)
        follower = FeedFollower(feed_log(database, 10), FeedRules(poll_seconds=0.05))
        async with running(follower), follower.subscribe() as subscription:
            received = asyncio.ensure_future(drain(follow(follower, subscription, None, everything), 3))
            await asyncio.sleep(0.1)
            await writer.append([entry(n) for n in range(3)])  # nobody wakes the follower
            assert await received == [0, 1, 2]
    finally:
        await other_client.close()


async def test_a_resumed_subscription_reads_the_stored_changes_then_live_ones_once(
    database: Database,
) -> None:
    log = feed_log(database, 4)
    await log.append([entry(n) for n in range(10)])
    follower = FeedFollower(log, FeedRules(poll_seconds=0.05))
    async with running(follower):
        await asyncio.sleep(0.1)
        async with follower.subscribe() as subscription:
            changes = follow(follower, subscription, 3, everything)
            assert await drain(changes, 7) == [3, 4, 5, 6, 7, 8, 9]
            await log.append([entry(10)])
            follower.wake()
            assert await drain(changes, 1) == [10]


async def test_a_full_queue_marks_only_its_subscriber_lagged(database: Database) -> None:
    log = feed_log(database, 10)
    follower = FeedFollower(log, FeedRules(queue_size=2))
    await follower.start()
    told: list[str] = []
    async with follower.subscribe(on_lag=lambda: told.append("slow")) as slow:
        async with follower.subscribe(on_lag=lambda: told.append("fast")) as fast:
            await log.append([entry(0)])
            await follower.advance()
            assert (await fast.next()) is not None
            await log.append([entry(n) for n in range(1, 3)])
            await follower.advance()
            assert not fast.lagged
            assert slow.lagged
            assert told == ["slow"]
            assert [c.payload["n"] for c in [await fast.next(), await fast.next()] if c] == [1, 2]
        with pytest.raises(SubscriberLagged):
            await anext(follow(follower, slow, None, everything))


def test_the_change_stream_back_off_doubles_up_to_its_bound_and_never_spins() -> None:
    rules = FeedRules(stream_retry_seconds=0.5, stream_retry_max_seconds=4.0)
    assert [rules.stream_retry_delay(failures) for failures in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


async def test_where_no_change_stream_opens_the_follower_polls_counts_and_retries(
    database: Database,
) -> None:
    """The embedded store has no change streams: in the one-collection layout the follower's
    ``watch`` fails for real, and the poll still delivers."""
    log = change_log(Layout(), database, 86_400)
    now = datetime.now(UTC)  # the store's TTL monitor removes changes older than a day from now
    restarts: list[str] = []
    retried = asyncio.Event()

    def restarted(reason: str) -> None:
        restarts.append(reason)
        if len(restarts) >= 3:
            retried.set()

    rules = FeedRules(poll_seconds=0.05, stream_retry_seconds=0.05, stream_retry_max_seconds=0.1)
    follower = FeedFollower(log, rules, on_stream_restart=restarted)
    async with running(follower), follower.subscribe() as subscription:
        changes = follow(follower, subscription, subscription.start, everything)
        await log.append([entry(1, now), entry(2, now)])  # not through a recorder: nothing wakes the follower
        assert await drain(changes, 2) == [1, 2]
        await asyncio.wait_for(retried.wait(), 5)
        assert follower.running
        await log.append([entry(3, now)])
        assert await drain(changes, 1) == [3]
    assert set(restarts) == {"refused"}
    assert follower.stream_restarts["refused"] == len(restarts)

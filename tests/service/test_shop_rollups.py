"""The day rollups written behind: nothing an acknowledged request tracked is lost to a crash
(the events logged since a silent process's mark are rolled up again), a request in flight
holds the mark back, a read writes the buffer first, and a clean stop leaves nothing to recover."""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from profilegate.domain.shop_days import DayRollup
from profilegate.service.shop_metrics import rebuild_shop_days
from profilegate.service.shop_rollups import CLOCK_MARGIN, SILENT_SECONDS, WriteBehindShopDays
from profilegate.service.tracking import Status, track
from profilegate.storage.store import Repositories
from tests.gateway import FrozenClock
from tests.service.raw_events import event, order
from tests.service.test_rebuild import default_tracking

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DAY = NOW.date()
UTC_ZONE = ZoneInfo("UTC")


def behind(repos: Repositories, clock: FrozenClock, writer: str) -> WriteBehindShopDays:
    return WriteBehindShopDays(repos.shop_days, repos.events, UTC_ZONE, clock, writer, flush_seconds=60.0)


def summary(rollups: list[DayRollup]) -> dict[str, tuple[int, int, int]]:
    return {r.key: (len(r.visitors), len(r.buyers), sum(r.orders.values())) for r in rollups}


async def tracked(repos: Repositories, clock: FrozenClock, expected: Status = Status.ACCEPTED) -> None:
    batch = [
        event("v1", "product_view", NOW - timedelta(minutes=5), {"anonymousId": "ann"}, "web", sku="A1"),
        event("v2", "page_view", NOW - timedelta(minutes=4), {"anonymousId": "bob"}, "app", url="/"),
        order("o1", "order-1", "50.00", NOW - timedelta(minutes=3), {"anonymousId": "ann"}, "web"),
    ]
    outcomes = (await track(repos, batch, default_tracking(), clock())).results
    assert [o.status for o in outcomes] == [expected] * 3


async def test_a_crash_before_the_rollups_are_written_loses_nothing(repos: Repositories) -> None:
    clock = FrozenClock(NOW)
    crashed = behind(repos, clock, "crashed")
    await crashed.start()
    await tracked(dataclasses.replace(repos, shop_days=crashed), clock)
    assert await repos.shop_days.up_to(DAY) == []  # held in the buffer of a process that dies now

    clock.advance(seconds=SILENT_SECONDS + 1)
    survivor = behind(repos, clock, "survivor")
    assert await survivor.recover() == 3
    recovered = summary(await repos.shop_days.up_to(DAY))
    assert recovered[DAY.isoformat()] == (2, 1, 5000)  # ann and bob visited, ann bought for 50.00
    await repos.shop_days.clear()
    await rebuild_shop_days(repos, default_tracking().shop)
    assert summary(await repos.shop_days.up_to(DAY)) == recovered
    assert await repos.shop_days.writers_silent_since(clock() + timedelta(days=1)) == []


async def test_a_process_that_still_speaks_is_not_recovered(repos: Repositories) -> None:
    clock = FrozenClock(NOW)
    alive = behind(repos, clock, "alive")
    await alive.start()
    await tracked(dataclasses.replace(repos, shop_days=alive), clock)
    clock.advance(seconds=SILENT_SECONDS - 1)
    assert await behind(repos, clock, "other").recover() == 0
    assert await repos.shop_days.up_to(DAY) == []  # still alive's to write


async def test_a_request_in_flight_holds_the_mark_back(repos: Repositories) -> None:
    clock = FrozenClock(NOW)
    writer = behind(repos, clock, "w")
    received = NOW - timedelta(seconds=30)
    with writer.receiving(received):
        await writer.flush()
    (mark,) = await repos.shop_days.writers_silent_since(NOW + timedelta(seconds=1))
    assert mark.safe_from == received - CLOCK_MARGIN
    await writer.flush()
    (mark,) = await repos.shop_days.writers_silent_since(NOW + timedelta(seconds=1))
    assert mark.safe_from == NOW - CLOCK_MARGIN


async def test_a_read_writes_the_buffer_first_and_a_stop_leaves_nothing_to_recover(
    repos: Repositories,
) -> None:
    clock = FrozenClock(NOW)
    writer = behind(repos, clock, "w")
    await writer.start()
    await tracked(dataclasses.replace(repos, shop_days=writer), clock)
    assert summary(await writer.up_to(DAY))[DAY.isoformat()] == (2, 1, 5000)
    await tracked(dataclasses.replace(repos, shop_days=writer), clock, Status.DUPLICATE)  # a replay
    await writer.stop()
    assert summary(await repos.shop_days.up_to(date(2026, 12, 31)))[DAY.isoformat()] == (2, 1, 5000)
    clock.advance(seconds=SILENT_SECONDS + 1)
    assert await repos.shop_days.writers_silent_since(clock()) == []

"""The shop's day rollups in the store: a repeated write changes nothing, a read stops at its day."""

from datetime import date

from profilegate.domain.events import Channel
from profilegate.domain.shop_days import DayRollup
from profilegate.storage.store import Repositories


def rollup(day: str, channel: Channel | None = None, visitors: set[str] | None = None) -> DayRollup:
    return DayRollup(date.fromisoformat(day), channel, visitors or {"v1"}, {"v1"}, {"o1": 5000}, {"r1": 1000})


async def test_writing_the_same_rollup_again_changes_nothing(repos: Repositories) -> None:
    await repos.shop_days.add([rollup("2026-03-01"), rollup("2026-03-01", Channel.WEB)])
    await repos.shop_days.add([rollup("2026-03-01"), rollup("2026-03-01", Channel.WEB)])

    stored = await repos.shop_days.up_to(date(2026, 3, 1))

    assert sorted(stored, key=lambda r: r.key) == [rollup("2026-03-01"), rollup("2026-03-01", Channel.WEB)]


async def test_rollups_of_one_day_add_up(repos: Repositories) -> None:
    await repos.shop_days.add([rollup("2026-03-01", visitors={"v1"})])
    await repos.shop_days.add([DayRollup(date(2026, 3, 1), None, {"v2"}, set(), {"o2": 700})])

    (stored,) = await repos.shop_days.up_to(date(2026, 3, 1))

    assert (stored.visitors, stored.buyers, stored.orders) == ({"v1", "v2"}, {"v1"}, {"o1": 5000, "o2": 700})


async def test_a_read_stops_at_its_last_day(repos: Repositories) -> None:
    await repos.shop_days.add([rollup("2026-02-28"), rollup("2026-03-01"), rollup("2026-03-02", Channel.APP)])

    stored = await repos.shop_days.up_to(date(2026, 3, 1))

    assert sorted(r.key for r in stored) == ["2026-02-28", "2026-03-01"]

"""Each segment's size per shop day, recorded by the hourly refresh, read as ``sizeHistory``."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from profilegate.service.segments import SegmentCatalogue, refresh_segments
from profilegate.service.tracking import Status, track
from profilegate.storage.store import Repositories
from tests.conformance.segment_cases import NOW
from tests.service.raw_events import email_ref, order
from tests.service.test_rebuild import default_tracking
from tests.service.test_segment_members import save

BERLIN = ZoneInfo("Europe/Berlin")


async def buy(repos: Repositories, who: str, at: datetime) -> None:
    raw = order(f"o-{who}", f"order-{who}", "20.00", at, email_ref(who))
    result = await track(repos, [raw], default_tracking(), at)
    assert result.count(Status.ACCEPTED) == 1


async def test_the_refresh_records_one_size_per_shop_day_the_last_count_winning(repos: Repositories) -> None:
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    await save(repos, catalogue, "buyers", "orders(last 365d) >= 1")
    first_day = NOW - timedelta(days=2)
    await buy(repos, "ann@example.com", first_day - timedelta(hours=1))
    await refresh_segments(repos, catalogue, first_day, zone=BERLIN)
    await buy(repos, "bob@example.com", first_day + timedelta(minutes=5))
    await refresh_segments(repos, catalogue, first_day + timedelta(minutes=10), zone=BERLIN)
    await buy(repos, "cem@example.com", NOW - timedelta(hours=1))
    await refresh_segments(repos, catalogue, NOW, zone=BERLIN)

    history = await repos.segment_sizes.history("buyers", date(2026, 11, 1), date(2026, 11, 30))

    assert history == [(first_day.astimezone(BERLIN).date(), 2), (NOW.astimezone(BERLIN).date(), 3)]


async def test_days_outside_the_range_and_other_segments_are_left_out(repos: Repositories) -> None:
    catalogue = SegmentCatalogue(repos, cache_seconds=0)
    await save(repos, catalogue, "buyers", "orders(last 365d) >= 1")
    await save(repos, catalogue, "big", "orders(last 365d) >= 5")
    await refresh_segments(repos, catalogue, NOW - timedelta(days=3), zone=BERLIN)
    await refresh_segments(repos, catalogue, NOW, zone=BERLIN)

    today = NOW.astimezone(BERLIN).date()

    assert await repos.segment_sizes.history("buyers", today, today) == [(today, 0)]
    assert await repos.segment_sizes.history("big", today - timedelta(days=1), today) == [(today, 0)]

"""The shop's metrics over a range of shop days: one read of the day rollups, however many
profiles and events the range holds; and their rebuild from the event log."""

from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

from profilegate.domain.errors import InvalidInput
from profilegate.domain.shop_days import DayRollup, ShopRules, day_rollups, merged, visitor_digest
from profilegate.domain.shop_metrics import MetricsQuery, ShopReport, shop_report
from profilegate.storage.documents import Document
from profilegate.storage.events import event_from_document
from profilegate.storage.store import Repositories


async def shop_metrics(repos: Repositories, query: MetricsQuery, segment: str | None = None) -> ShopReport:
    """``query.churn_days`` and ``session_timeout`` come from the caller; the rollups are days of
    the shop's zone, read up to the day after the last (whose events end the last day's views).
    With ``segment``, only what the segment's members (as recorded now) did counts."""
    members = None if segment is None else await _member_digests(repos, segment)
    rollups = await repos.shop_days.up_to(query.last + timedelta(days=1))
    if members is not None:
        rollups = [rollup.only(members) for rollup in rollups]
    return shop_report(rollups, query)


async def _member_digests(repos: Repositories, key: str) -> set[str]:
    segment = await repos.segments.get(key)
    if segment is None:
        raise InvalidInput("segment", f"no segment {key!r}")
    if await repos.segment_members.built(key) != segment.version:
        raise InvalidInput("segment", f"the members of {key!r} are still being recorded; ask again shortly")
    return {visitor_digest(profile_id) for profile_id in await repos.segment_members.profile_ids(key)}


async def rebuild_shop_days(repos: Repositories, shop: ShopRules) -> int:
    """Add every logged event to its shop day; how many day documents the log fills.

    The rollups take what the log holds with the operators tracking uses, so events tracked
    meanwhile are kept; a rollup the log no longer explains (its events erased or past the
    log's retention) is not taken away: ``clear`` first for an exact copy of the log.
    """
    rollups = logged_rollups(await logged_once(repos.events.scan()), shop.zone)
    await repos.shop_days.add(rollups.values())
    return len(rollups)


async def logged_once(documents: AsyncIterator[Document]) -> dict[str, Document]:
    """Logged event documents by id: an event logged twice (a replay in another segment) once."""
    logged: dict[str, Document] = {}
    async for document in documents:
        logged.setdefault(document["_id"], document)
    return logged


def logged_rollups(logged: dict[str, Document], zone: ZoneInfo) -> dict[str, DayRollup]:
    """The day rollups of these logged events, by key."""
    return merged(day_rollups(((event_from_document(d), d["profileId"]) for d in logged.values()), zone))

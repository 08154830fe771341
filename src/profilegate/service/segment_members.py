"""Segment membership kept on write, so a page of members is one range read, not a scan.

Every profile write the repository applies is followed here (``MembershipKeeper``, installed
on ``ProfileRepository`` by the segment catalogue): the segments are evaluated for the
profile as written, at the write's moment (``updated_at``), and ``segment_members`` records
it in the segments it is in, with the moment each answer can next change by time alone
(``segment_timing``), and out of the others. Merged-away profiles are in none; an erased
profile's memberships are deleted.

A new or changed segment (and every segment that uses it through ``in_segment``) is
backfilled in the background from the pushed-down query; until that has finished for the
segment's current version, members are read with the pushed-down query instead.
A page read from the records is checked against the rule for every profile on it, so a
record that went out of date (its ``until`` passed, a write raced a backfill) never shows a
profile that is not a member. A profile that becomes a member by time alone (a window that
slid, an extension that expired) without being written is recorded by the refresh
(``PROFILEGATE_SEGMENT_REFRESH_SECONDS``) or by its next write.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from profilegate.domain.profiles import Profile
from profilegate.domain.segment_predicate import holds
from profilegate.domain.segment_rules import Rule, referenced_segments
from profilegate.domain.segment_timing import next_change, time_dependent
from profilegate.domain.segments import Segment
from profilegate.storage.segment_query import segment_filter
from profilegate.storage.store import Repositories

type SegmentsNow = Callable[[], Awaitable[list[Segment]]]


class MembersPath(StrEnum):
    """How ``members`` finds a segment's members (what ``Segment.membersPath`` answers)."""

    RECORDED = "RECORDED"  # the records kept on write: one range read per collection
    PUSHED_DOWN = "PUSHED_DOWN"  # the rule compiled into a query: the records are being computed


def inside(profile: Profile, segments: list[Segment], now: datetime) -> dict[str, datetime | None]:
    """The segments ``profile`` is in at ``now``, each with the moment its answer can next
    change without a write (None: only a write changes it)."""
    if profile.merged_into is not None:
        return {}
    rules = {segment.key: segment.rule for segment in segments}
    return {
        segment.key: next_change(segment.rule, profile, now, rules)
        for segment in segments
        if holds(segment.rule, profile, now, rules)
    }


class MembershipKeeper:
    """Records each written profile's memberships (``ProfileWrites`` for ``ProfileRepository``)."""

    def __init__(self, repos: Repositories, segments: SegmentsNow) -> None:
        self._repos = repos
        self._segments = segments

    async def written(
        self, profile: Profile, previous: Profile | None = None, *, created: bool = False
    ) -> None:
        """``previous``: the profile this write replaced, when the writer had it; the records
        are then written only if the memberships differ. ``created``: a new profile, which has
        no records to delete."""
        segments = await self._segments()
        if not segments:
            return
        now = profile.updated_at
        found = inside(profile, segments, now)
        if previous is not None and inside(previous, segments, now).keys() == found.keys():
            return
        outside = [] if created else [s.key for s in segments if s.key not in found]
        await self._repos.segment_members.record(profile.id, found, outside)

    async def deleted(self, profile_id: str) -> None:
        segments = await self._segments()
        await self._repos.segment_members.record(profile_id, {}, [s.key for s in segments])


def dependents(key: str, segments: list[Segment]) -> list[Segment]:
    """The segments whose members change when ``key``'s rule does: itself and every segment
    that reaches it through ``in_segment``, in the order given."""
    rules: dict[str, Rule] = {s.key: s.rule for s in segments}
    reached = {key}
    changed = True
    while changed:
        changed = False
        for segment in segments:
            if segment.key not in reached and referenced_segments(segment.rule) & reached:
                reached.add(segment.key)
                changed = True
    return [s for s in segments if s.key in reached and s.key in rules]


async def forget_members(repos: Repositories, key: str) -> None:
    """The segment changed or went: its records no longer say who is in it."""
    await repos.segment_members.mark_built(key, None)
    await repos.segment_members.clear(key)


RECHECK_BATCH = 500


async def refresh_members(repos: Repositories, segments: list[Segment], now: datetime) -> int:
    """Bring the records in line with time: a segment whose records are not complete is
    backfilled; in the others, members whose ``until`` passed are checked again, and a rule
    that time alone can satisfy has its members recorded again (those who entered by time).
    How many records were written or checked."""
    rules = {s.key: s.rule for s in segments}
    counted = 0
    for segment in segments:
        if await repos.segment_members.built(segment.key) != segment.version:
            counted += await backfill(repos, segment, segments, now)
            continue
        due = await repos.segment_members.due(segment.key, now)
        for start in range(0, len(due), RECHECK_BATCH):
            counted += await _recheck(repos, due[start : start + RECHECK_BATCH], segments, now)
        if time_dependent(segment.rule, rules):
            counted += await backfill(repos, segment, segments, now, complete=False)
    return counted


async def _recheck(
    repos: Repositories, profile_ids: list[str], segments: list[Segment], now: datetime
) -> int:
    found = await repos.profiles.by_ids(profile_ids)
    keys = [s.key for s in segments]
    for profile_id in profile_ids:
        profile = found.get(profile_id)
        members = {} if profile is None else inside(profile, segments, now)
        await repos.segment_members.record(profile_id, members, [k for k in keys if k not in members])
    return len(profile_ids)


async def backfill(
    repos: Repositories, segment: Segment, segments: list[Segment], now: datetime, *, complete: bool = True
) -> int:
    """Record every member of ``segment``, found by the pushed-down query, then (``complete``)
    say its records are complete for its version; how many members."""
    rules = {s.key: s.rule for s in segments}
    counted = 0
    async for profile in repos.profiles.matching(segment_filter(segment.rule, now, rules)):
        if holds(segment.rule, profile, now, rules):
            until = next_change(segment.rule, profile, now, rules)
            await repos.segment_members.record(profile.id, {segment.key: until}, [])
            counted += 1
    if complete:
        await repos.segment_members.mark_built(segment.key, segment.version)
    return counted


async def members_path(repos: Repositories, segment: Segment) -> MembersPath:
    built = await repos.segment_members.built(segment.key)
    return MembersPath.RECORDED if built == segment.version else MembersPath.PUSHED_DOWN


@dataclass(frozen=True)
class RecordedPage:
    profiles: list[Profile]
    more: bool  # members after the last one on the page


async def recorded_page(
    repos: Repositories,
    segment: Segment,
    segments: list[Segment],
    now: datetime,
    first: int,
    after: str | None,
) -> RecordedPage:
    """Up to ``first`` members after ``after`` from the records, each checked against the rule."""
    rules = {s.key: s.rule for s in segments}
    kept: list[Profile] = []
    cursor = after
    while len(kept) <= first:
        wanted = first + 1 - len(kept)
        records = await repos.segment_members.page(segment.key, wanted, cursor)
        found = await repos.profiles.by_ids([profile_id for profile_id, _ in records])
        kept.extend(
            profile
            for profile in (found.get(profile_id) for profile_id, _ in records)
            if profile is not None
            and profile.merged_into is None
            and holds(segment.rule, profile, now, rules)
        )
        if len(records) < wanted:
            break  # no records after these
        cursor = records[-1][0]
    return RecordedPage(kept[:first], len(kept) > first)

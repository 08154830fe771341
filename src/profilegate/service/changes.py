"""Writing the change feed: what a profile write changed, its segments and tier included."""

from collections.abc import Callable, Sequence
from datetime import datetime

from profilegate.domain.changes import (
    Change,
    NewChange,
    Standing,
    erasure_change,
    merge_change,
    profile_changes,
    unmerge_changes,
)
from profilegate.domain.events import TrackedEvent
from profilegate.domain.profiles import Profile
from profilegate.domain.segments import Segment
from profilegate.domain.tiers import TierPolicy
from profilegate.service.observers import ProfileWrite
from profilegate.service.segments import SegmentCatalogue, memberships
from profilegate.service.tiers import ActivePolicy, profile_loyalty
from profilegate.storage.changes import ChangeLog


class ChangeRecorder:
    """The observer that writes each profile change to the feed before the use case returns.

    ``written`` is called with the changes of every write once they are stored (what the local
    follower passes on without reading them back).
    """

    def __init__(
        self,
        log: ChangeLog,
        segments: SegmentCatalogue,
        policy: ActivePolicy,
        *,
        partner_purpose: str,
        written: Callable[[list[Change]], None] = lambda changes: None,
    ) -> None:
        self.log = log
        self._segments = segments
        self._policy = policy
        self._partner_purpose = partner_purpose
        self._written = written

    async def changed(
        self, before: Profile | None, after: Profile, now: datetime, *, events: Sequence[TrackedEvent] = ()
    ) -> None:
        await self.changed_all([ProfileWrite(before, after, events)], now)

    async def changed_all(self, writes: Sequence[ProfileWrite], now: datetime) -> None:
        """Every change of these writes, in order, in one append to the feed."""
        segments, policy = await self._segments.all(), await self._policy.get()
        changes: list[NewChange] = []
        for write in writes:
            was = None if write.before is None else standing(write.before, segments, policy, now)
            is_now = standing(write.after, segments, policy, now)
            changes += profile_changes(
                write.before,
                write.after,
                was,
                is_now,
                now,
                partner_purpose=self._partner_purpose,
                events=write.events,
                summarised=write.summarised,
            )
        await self._append(changes)

    async def merged(self, before: Profile, after: Profile, loser_id: str, now: datetime) -> None:
        segments, policy = await self._segments.all(), await self._policy.get()
        was, is_now = standing(before, segments, policy, now), standing(after, segments, policy, now)
        changes = profile_changes(before, after, was, is_now, now, partner_purpose=self._partner_purpose)
        await self._append([*changes, merge_change(after, loser_id, is_now, now, self._partner_purpose)])

    async def unmerged(self, winner: Profile, loser: Profile, now: datetime) -> None:
        segments, policy = await self._segments.all(), await self._policy.get()
        standings = standing(winner, segments, policy, now), standing(loser, segments, policy, now)
        await self._append(unmerge_changes(winner, loser, standings, now, self._partner_purpose))

    async def erased(self, profile: Profile, now: datetime) -> None:
        """``profile`` (and whatever was merged into it) was erased."""
        await self._append([erasure_change(profile, now, self._partner_purpose)])

    async def _append(self, changes: list[NewChange]) -> list[Change]:
        written = await self.log.append(changes)
        if written:
            self._written(written)
        return written


def standing(profile: Profile, segments: list[Segment], policy: TierPolicy | None, now: datetime) -> Standing:
    loyalty = profile_loyalty(profile, policy, now)
    return Standing(
        segments=tuple(memberships(profile, segments, now)),
        tier=None if loyalty.tier is None else loyalty.tier.name,
        tier_reason=loyalty.reason.value,
        policy_version=None if policy is None else policy.version,
    )

"""The feed of an import: one summary change per profile written, not one per event.

Tracking tells the feed of every event it applied (``event_tracked``); an import of years of
history would flood partners with them. The import's observer passes the profile writes on
with their events told in one ``events_imported`` change (how many, of which types, from when
to when) per profile and tracked batch, beside what else changed (segments entered and left,
tier changed); it also counts the profiles made and changed.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from profilegate.domain.events import TrackedEvent
from profilegate.domain.profiles import Profile
from profilegate.service.observers import ProfileObserver, ProfileWrite


class ImportObserver:
    def __init__(self, feed: ProfileObserver) -> None:
        self._feed = feed
        self.created: set[str] = set()
        self.updated: set[str] = set()

    async def changed(
        self, before: Profile | None, after: Profile, now: datetime, *, events: Sequence[TrackedEvent] = ()
    ) -> None:
        await self.changed_all([ProfileWrite(before, after, events)], now)

    async def changed_all(self, writes: Sequence[ProfileWrite], now: datetime) -> None:
        for write in writes:
            (self.created if write.before is None else self.updated).add(write.after.id)
        await self._feed.changed_all([replace(write, summarised=True) for write in writes], now)

    async def merged(self, before: Profile, after: Profile, loser_id: str, now: datetime) -> None:
        await self._feed.merged(before, after, loser_id, now)

    async def unmerged(self, winner: Profile, loser: Profile, now: datetime) -> None:
        await self._feed.unmerged(winner, loser, now)

    def take_counts(self) -> tuple[int, int]:
        """Profiles made and (other) profiles changed since the last call."""
        counts = len(self.created), len(self.updated - self.created)
        self.created, self.updated = set(), set()
        return counts

"""Who is told when a profile changes: the change feed, or no one (``UNOBSERVED``).

Every use case that writes a profile takes an observer and calls it after the write and
before it returns, so a change is in the feed once its mutation is acknowledged.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from profilegate.domain.events import TrackedEvent
from profilegate.domain.profiles import Profile


@dataclass(frozen=True)
class ProfileWrite:
    """``after`` was written over ``before`` (None: it was created), applying ``events``.

    ``summarised``: the feed tells the events in one summary (an import), not one by one.
    """

    before: Profile | None
    after: Profile
    events: Sequence[TrackedEvent] = ()
    summarised: bool = False


class ProfileObserver(Protocol):
    async def changed(
        self, before: Profile | None, after: Profile, now: datetime, *, events: Sequence[TrackedEvent] = ()
    ) -> None:
        """``after`` was written over ``before`` (None: it was created), applying ``events``."""

    async def changed_all(self, writes: Sequence[ProfileWrite], now: datetime) -> None:
        """Many profiles were written (a tracked batch): told at once, in order."""

    async def merged(self, before: Profile, after: Profile, loser_id: str, now: datetime) -> None:
        """The profile ``loser_id`` was merged into ``after`` (which was ``before``)."""

    async def unmerged(self, winner: Profile, loser: Profile, now: datetime) -> None:
        """The merge of ``loser`` into ``winner`` was undone (both as they are now)."""


class Unobserved:
    async def changed(
        self, before: Profile | None, after: Profile, now: datetime, *, events: Sequence[TrackedEvent] = ()
    ) -> None:
        return None

    async def changed_all(self, writes: Sequence[ProfileWrite], now: datetime) -> None:
        return None

    async def merged(self, before: Profile, after: Profile, loser_id: str, now: datetime) -> None:
        return None

    async def unmerged(self, winner: Profile, loser: Profile, now: datetime) -> None:
        return None


UNOBSERVED: ProfileObserver = Unobserved()

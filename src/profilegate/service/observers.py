"""Who is told when a profile changes: the change feed, or no one (``UNOBSERVED``).

Every use case that writes a profile takes an observer and calls it after the write and
before it returns, so a change is in the feed once its mutation is acknowledged.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from profilegate.domain.events import TrackedEvent
from profilegate.domain.profiles import Profile


class ProfileObserver(Protocol):
    async def changed(
        self, before: Profile | None, after: Profile, now: datetime, *, events: Sequence[TrackedEvent] = ()
    ) -> None:
        """``after`` was written over ``before`` (None: it was created), applying ``events``."""

    async def merged(self, before: Profile, after: Profile, loser_id: str, now: datetime) -> None:
        """The profile ``loser_id`` was merged into ``after`` (which was ``before``)."""


class Unobserved:
    async def changed(
        self, before: Profile | None, after: Profile, now: datetime, *, events: Sequence[TrackedEvent] = ()
    ) -> None:
        return None

    async def merged(self, before: Profile, after: Profile, loser_id: str, now: datetime) -> None:
        return None


UNOBSERVED: ProfileObserver = Unobserved()

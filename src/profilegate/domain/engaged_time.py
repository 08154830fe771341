"""Engaged time on product pages, from the product views and event instants of shop days.

A product view's engaged time is the ``engagedSeconds`` it reported (capped at
``MAX_ENGAGED_SECONDS`` when it was tracked); without one, the gap from the view to the same
visitor's next event (any type, strictly later instant), when that gap is at most the session
timeout, as web analytics tools measure time on page. The last view of a session (no later
event within the timeout) has no measured time and is left out of the median and the mean.
The next event is looked for on the view's shop day and the day after (the session timeout is
at most 12 hours, shorter than any day), so a session across midnight is measured alike.
Everything is computed when asked from sets of instants: in which order or batch the events
arrived changes nothing.
"""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from profilegate.domain.events import MAX_ENGAGED_SECONDS
from profilegate.domain.shop_days import DayRollup, ProductViewMark

MAX_SESSION_TIMEOUT = timedelta(hours=12)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class EngagedTime:
    """``views``: product views in the period; ``measured``: those with an engaged time."""

    views: int
    seconds: tuple[float, ...]

    @property
    def measured(self) -> int:
        return len(self.seconds)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.seconds) if self.seconds else None


def engaged_time(
    days: Sequence[DayRollup], by_day: Mapping[date, DayRollup], session_timeout: timedelta
) -> EngagedTime:
    """The product views of ``days`` (one scope's rollups), with ``by_day`` to find the days after."""
    timeout = session_timeout // timedelta(milliseconds=1)
    seconds: list[float] = []
    views = 0
    for rollup in days:
        following = by_day.get(rollup.day + _DAY)
        for view in rollup.product_views.values():
            views += 1
            measured = _measured(view, rollup, following, timeout)
            if measured is not None:
                seconds.append(measured)
    return EngagedTime(views, tuple(sorted(seconds)))


def _measured(
    view: ProductViewMark, day: DayRollup, following: DayRollup | None, timeout: int
) -> float | None:
    if view.engaged_seconds is not None:
        return view.engaged_seconds
    later = [_next_after(view.at, day.times.get(view.visitor, set()))]
    if following is not None:
        later.append(_next_after(view.at, following.times.get(view.visitor, set())))
    gaps = [instant - view.at for instant in later if instant is not None]
    if not gaps or min(gaps) > timeout:
        return None
    return min(min(gaps) / 1000, MAX_ENGAGED_SECONDS)


def _next_after(instant: int, instants: set[int]) -> int | None:
    return min((later for later in instants if later > instant), default=None)

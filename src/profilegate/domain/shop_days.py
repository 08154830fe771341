"""Shop days: what each day of the shop's time zone adds to the shop's metrics.

A tracked event lands in the rollup of its shop day twice: once for all channels and once for
its channel. A rollup holds sets, so writing the same events again changes nothing (a replay
after a crash heals a rollup write that died, and counts nothing twice):

- ``visitors``: digests of the profiles with any event that day (anonymous ones included);
- ``buyers``: digests of the profiles with an ``order_completed`` that day;
- ``orders``: order id digest -> order total, minor units of the base currency (an order
  completed again under another event id is one order, as in the profile's aggregates);
- ``returns``: event digest -> returned amount;
- ``times``: visitor digest -> the instants (epoch milliseconds) of their events that day,
  which end the engaged time of their product views before them;
- ``product_views``: event digest -> the view's visitor, instant and reported
  ``engagedSeconds`` (None when it reported none: then the gap to the visitor's next event
  tells, when the shop's metrics are asked for; see :mod:`profilegate.domain.engaged_time`);
- ``order_marks``: order id digest -> buyer, instant, payment method and lines, and
  ``touches``: event digest -> visitor, instant and traffic source, for the breakdowns
  (:mod:`profilegate.domain.shop_marks`); ``returners``: return event digest -> visitor, so
  that a segment's share of the returns is known;
- ``return_orders``: return event digest -> the order id digest it returned (part of), and
  ``cancellations``: order id digest -> the visitor who cancelled it, so that what an order is
  worth net (the net average order value) is known whichever day its returns came.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from profilegate.domain.aggregates import event_digest, order_key
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, EventType, TrackedEvent
from profilegate.domain.shop_marks import OrderMark, Touch, order_mark, touch

DEFAULT_CHURN_DAYS = 90
DEFAULT_SESSION_TIMEOUT_MINUTES = 30
DEFAULT_SESSION_TIMEOUT = timedelta(minutes=DEFAULT_SESSION_TIMEOUT_MINUTES)


@dataclass(frozen=True)
class ShopRules:
    """``zone``: the shop's time zone, whose days the rollups and periods are;
    ``churn_days``: days without an order after which a customer counts as churned;
    ``session_timeout``: the longest gap between two events of a visitor in one session."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    churn_days: int = DEFAULT_CHURN_DAYS
    session_timeout: timedelta = DEFAULT_SESSION_TIMEOUT


def visitor_digest(profile_id: str) -> str:
    """A 64-bit stand-in for a profile id in the rollups' sets."""
    return hashlib.blake2b(profile_id.encode(), digest_size=8).hexdigest()


def shop_zone(name: str) -> ZoneInfo:
    """The shop's time zone by its IANA name, e.g. "Europe/Berlin"."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput("shopTimeZone", f"{name!r} is not an IANA time zone") from error


def shop_day(event: TrackedEvent, zone: ZoneInfo) -> date:
    return event.at.astimezone(zone).date()


@dataclass(frozen=True)
class ProductViewMark:
    """A product view: whose, when (epoch milliseconds), and the engaged seconds it reported."""

    visitor: str
    at: int
    engaged_seconds: float | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


@dataclass
class DayRollup:
    """One shop day's sets, for all channels (``channel`` None) or one channel."""

    day: date
    channel: Channel | None = None
    visitors: set[str] = field(default_factory=set)
    buyers: set[str] = field(default_factory=set)
    orders: dict[str, int] = field(default_factory=dict)
    returns: dict[str, int] = field(default_factory=dict)
    times: dict[str, set[int]] = field(default_factory=dict)
    product_views: dict[str, ProductViewMark] = field(default_factory=dict)
    order_marks: dict[str, OrderMark] = field(default_factory=dict)
    touches: dict[str, Touch] = field(default_factory=dict)
    returners: dict[str, str] = field(default_factory=dict)  # return event digest -> visitor
    return_orders: dict[str, str] = field(default_factory=dict)  # return event digest -> order key
    cancellations: dict[str, str] = field(default_factory=dict)  # order key -> visitor

    @property
    def key(self) -> str:
        day = self.day.isoformat()
        return day if self.channel is None else f"{day}|{self.channel.value}"

    def add(self, event: TrackedEvent, profile_id: str) -> None:
        visitor = visitor_digest(profile_id)
        self.visitors.add(visitor)
        at = epoch_millis(event.at)
        self.times.setdefault(visitor, set()).add(at)
        if event.type is EventType.PRODUCT_VIEW:
            engaged = event.properties.get("engagedSeconds")
            self.product_views[event_digest(event.id)] = ProductViewMark(
                visitor, at, None if engaged is None else float(engaged)
            )
        came_from = touch(event, visitor, at)
        if came_from is not None:
            self.touches[event_digest(event.id)] = came_from
        if event.type is EventType.ORDER_COMPLETED:
            self.buyers.add(visitor_digest(profile_id))
            self.orders[order_key(event.order_id or event.id)] = event.amount
            self.order_marks[order_key(event.order_id or event.id)] = order_mark(event, visitor, at)
        elif event.type is EventType.ORDER_RETURNED:
            self.returns[event_digest(event.id)] = event.amount
            self.returners[event_digest(event.id)] = visitor
            self.return_orders[event_digest(event.id)] = order_key(event.order_id or event.id)
        elif event.type is EventType.ORDER_CANCELLED:
            self.cancellations[order_key(event.order_id or event.id)] = visitor

    def only(self, members: set[str]) -> "DayRollup":
        """This day's sets with only the visitors in ``members`` (digests) and what they did."""
        orders = {k: mark for k, mark in self.order_marks.items() if mark.visitor in members}
        returns = {k: v for k, v in self.returners.items() if v in members}
        return DayRollup(
            day=self.day,
            channel=self.channel,
            visitors=self.visitors & members,
            buyers=self.buyers & members,
            orders={k: total for k, total in self.orders.items() if k in orders},
            returns={k: amount for k, amount in self.returns.items() if k in returns},
            times={v: times for v, times in self.times.items() if v in members},
            product_views={k: view for k, view in self.product_views.items() if view.visitor in members},
            order_marks=orders,
            touches={k: t for k, t in self.touches.items() if t.visitor in members},
            returners=returns,
            return_orders={k: order for k, order in self.return_orders.items() if k in returns},
            cancellations={k: v for k, v in self.cancellations.items() if v in members},
        )


def day_rollups(events: Iterable[tuple[TrackedEvent, str]], zone: ZoneInfo) -> list[DayRollup]:
    """What these events, each with the profile id it was logged for, add to their shop days."""
    rollups: dict[tuple[date, Channel | None], DayRollup] = {}
    for event, profile_id in events:
        day = shop_day(event, zone)
        for channel in (None, event.channel):
            rollups.setdefault((day, channel), DayRollup(day, channel)).add(event, profile_id)
    return list(rollups.values())


def merged(rollups: Iterable[DayRollup]) -> dict[str, DayRollup]:
    """Rollups of the same day and channel joined, by key."""
    joined: dict[str, DayRollup] = {}
    for rollup in rollups:
        into = joined.setdefault(rollup.key, DayRollup(rollup.day, rollup.channel))
        into.visitors |= rollup.visitors
        into.buyers |= rollup.buyers
        into.orders |= rollup.orders
        into.returns |= rollup.returns
        into.product_views |= rollup.product_views
        into.order_marks |= rollup.order_marks
        into.touches |= rollup.touches
        into.returners |= rollup.returners
        into.return_orders |= rollup.return_orders
        into.cancellations |= rollup.cancellations
        for visitor, times in rollup.times.items():
            into.times.setdefault(visitor, set()).update(times)
    return joined

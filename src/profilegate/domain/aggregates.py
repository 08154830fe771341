"""What a profile's events add up to: lifetime totals and per-UTC-day buckets.

Applying events is order-independent (counts and sums commute, times take min or max, a
cancellation meets its order whichever arrives first), so a late or shuffled stream gives
the same aggregates as a rebuild from the log. Window metrics read at most one bucket per
day of the window, however many events the customer ever had.
"""

import hashlib
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from profilegate.domain.events import EventType, TrackedEvent

# Replays are recognised among the last this many events applied to a profile. Ids are kept
# as 48-bit digests (6 bytes each in storage), so the guard stays small on every profile.
RECENT_EVENT_IDS = 500
# A profile keeps its heaviest categories only: the top this many by weight, ties by name.
MAX_CATEGORIES = 500
# Orders known to a profile (``order_index``): those of the retention window, at most this
# many, the newest by day kept; returns or cancellations of orders never seen go first.
MAX_ORDER_ENTRIES = 5_000
# Coupon campaigns a profile remembers redeeming (``coupon_campaigns``): the latest this many.
MAX_COUPON_CAMPAIGNS = 100


def event_digest(event_id: str) -> str:
    """A short, stable stand-in for an event id in the replay guard."""
    return hashlib.blake2b(event_id.encode(), digest_size=6).hexdigest()


def order_key(order_id: str) -> str:
    """The order index's key for an order id: a 64-bit digest, so entries pack to fixed width."""
    return hashlib.blake2b(order_id.encode(), digest_size=8).hexdigest()


class DayBucket(BaseModel):
    model_config = ConfigDict(frozen=True)

    counts: dict[str, int] = Field(default_factory=dict)
    orders: int = 0
    gross: int = 0
    returned: int = 0  # money given back on this day, for whichever order
    cancelled: int = 0  # of the orders placed on this day
    order_returns: int = 0  # money given back, so far, for the orders placed on this day
    coupons: int = 0  # orders placed on this day that redeemed an issued coupon

    def merged(self, other: "DayBucket") -> "DayBucket":
        return DayBucket(
            counts=_add_counts(self.counts, other.counts),
            orders=self.orders + other.orders,
            gross=self.gross + other.gross,
            returned=self.returned + other.returned,
            cancelled=self.cancelled + other.cancelled,
            order_returns=self.order_returns + other.order_returns,
            coupons=self.coupons + other.coupons,
        )

    @property
    def net(self) -> int:
        """What the orders placed on this day are worth after their returns and cancellations."""
        return self.gross - self.order_returns - self.cancelled


class OrderEntry(BaseModel):
    """What is known of one order: its total and day once seen, whether cancelled, returns."""

    model_config = ConfigDict(frozen=True)

    total: int | None = None
    day: str | None = None
    cancelled: bool = False
    returned: int = 0


class Aggregates(BaseModel):
    model_config = ConfigDict(frozen=True)

    counts: dict[str, int] = Field(default_factory=dict)
    channels: dict[str, int] = Field(default_factory=dict)
    categories: dict[str, int] = Field(default_factory=dict)
    orders: int = 0
    gross: int = 0
    returned: int = 0
    cancelled: int = 0
    cancelled_orders: int = 0
    returned_orders: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_order_at: datetime | None = None
    order_index: dict[str, OrderEntry] = Field(default_factory=dict)  # by order_key(order id)
    daily: dict[str, DayBucket] = Field(default_factory=dict)
    recent_event_ids: tuple[str, ...] = ()  # digests of the last applied ids, oldest first
    # Orders that redeemed a coupon handed out on another channel, by "<issued on>><bought on>"
    # (e.g. "email>store": an e-mailed coupon redeemed at the till).
    channel_links: dict[str, int] = Field(default_factory=dict)
    coupon_campaigns: dict[str, str] = Field(default_factory=dict)  # campaign -> latest day redeemed

    @property
    def net(self) -> int:
        return self.gross - self.returned - self.cancelled

    def average_order_value(self) -> int | None:
        kept = self.orders - self.cancelled_orders
        return None if kept <= 0 else round(self.net / kept)

    def return_rate(self) -> float:
        return 0.0 if self.orders == 0 else self.returned_orders / self.orders

    def conversion_rate(self) -> float | None:
        checkouts = self.counts.get(EventType.CHECKOUT_STARTED, 0)
        return None if checkouts == 0 else min(1.0, self.orders / checkouts)

    def window(self, now: datetime, days: int) -> Iterable[DayBucket]:
        """The buckets of the ``days`` UTC days ending today: O(days), not O(events)."""
        today = now.date()
        for offset in range(days):
            bucket = self.daily.get((today - timedelta(days=offset)).isoformat())
            if bucket is not None:
                yield bucket

    def orders_in(self, now: datetime, days: int) -> int:
        return sum(b.orders for b in self.window(now, days))

    def net_spend_in(self, now: datetime, days: int) -> int:
        return sum(b.net for b in self.window(now, days))

    def events_in(self, now: datetime, days: int, kind: EventType) -> int:
        return sum(b.counts.get(kind, 0) for b in self.window(now, days))

    def coupons_in(self, now: datetime, days: int) -> int:
        return sum(b.coupons for b in self.window(now, days))


def apply_events(
    aggregates: Aggregates, events: Iterable[TrackedEvent], now: datetime, retention_days: int
) -> tuple[Aggregates, list[TrackedEvent]]:
    """Apply the events not applied before; return the new aggregates and those applied."""
    state = _Mutable(aggregates)
    applied: list[TrackedEvent] = []
    seen = set(aggregates.recent_event_ids)
    for event in events:
        digest = event_digest(event.id)
        if digest in seen:
            continue
        seen.add(digest)
        state.apply(event)
        applied.append(event)
    fresh = [event_digest(event.id) for event in applied]
    state.recent = (list(aggregates.recent_event_ids) + fresh)[-RECENT_EVENT_IDS:]
    return state.frozen(cutoff_day(now, retention_days)), applied


def fold_events(events: Iterable[TrackedEvent], now: datetime, retention_days: int) -> Aggregates:
    """The aggregates of these events alone, as a rebuild from the log makes them.

    They are applied in event-time order, so the ids kept against replays are the newest by
    event time, not the ones that happened to be logged last.
    """
    ordered = sorted(events, key=lambda event: (event.at, event.id))
    return apply_events(Aggregates(), ordered, now, retention_days)[0]


def merge_aggregates(winner: Aggregates, loser: Aggregates, now: datetime, retention_days: int) -> Aggregates:
    """Two profiles' aggregates as if one person had made every event."""
    state = _Mutable(winner)
    state.absorb(loser)
    state.recent = list(dict.fromkeys(winner.recent_event_ids + loser.recent_event_ids))[-RECENT_EVENT_IDS:]
    return state.frozen(cutoff_day(now, retention_days))


def cutoff_day(now: datetime, retention_days: int) -> str:
    """Buckets before this day are beyond every window and are pruned."""
    return (now.date() - timedelta(days=retention_days)).isoformat()


class _Mutable:
    def __init__(self, base: Aggregates) -> None:
        self.values = base.model_dump(
            exclude={
                "counts",
                "channels",
                "categories",
                "order_index",
                "daily",
                "recent_event_ids",
                "channel_links",
                "coupon_campaigns",
            }
        )
        self.counts = dict(base.counts)
        self.channels = dict(base.channels)
        self.categories = dict(base.categories)
        self.orders_index = dict(base.order_index)
        self.daily = dict(base.daily)
        self.recent = list(base.recent_event_ids)
        self.channel_links = dict(base.channel_links)
        self.coupon_campaigns = dict(base.coupon_campaigns)

    def apply(self, event: TrackedEvent) -> None:
        _bump(self.counts, event.type)
        _bump(self.channels, event.channel)
        for category, weight in event.categories:
            _bump(self.categories, category, weight)
        self._seen(event.at)
        self._add_day(event.day, DayBucket(counts={event.type.value: 1}))
        match event.type:
            case EventType.ORDER_COMPLETED:
                self._order(event)
            case EventType.ORDER_CANCELLED:
                self._cancel(event)
            case EventType.ORDER_RETURNED:
                self._return(event)
            case _:
                pass

    def _seen(self, at: datetime) -> None:
        first, last = self.values["first_seen"], self.values["last_seen"]
        self.values["first_seen"] = at if first is None else min(first, at)
        self.values["last_seen"] = at if last is None else max(last, at)

    def _order(self, event: TrackedEvent) -> None:
        assert event.order_id is not None, "an order_completed event has an order id"
        key = order_key(event.order_id)
        entry = self.orders_index.get(key, OrderEntry())
        if entry.total is not None:
            return  # the same order under another event id: counted once
        self.values["orders"] += 1
        self.values["gross"] += event.amount
        last = self.values["last_order_at"]
        self.values["last_order_at"] = event.at if last is None else max(last, event.at)
        self._add_day(event.day, DayBucket(orders=1, gross=event.amount))
        self._coupon(event)
        self.orders_index[key] = entry.model_copy(update={"total": event.amount, "day": event.day})
        if entry.cancelled:
            self._count_cancellation(event.amount, event.day)
        if entry.returned:  # returns that arrived before their order count against its day now
            self._add_day(event.day, DayBucket(order_returns=entry.returned))

    def _coupon(self, event: TrackedEvent) -> None:
        """An order that redeemed an issued coupon: counted on its day, its campaign remembered,
        and the channel the coupon was handed out on linked to the one it was redeemed on."""
        if event.redeemed is None:
            return
        self._add_day(event.day, DayBucket(coupons=1))
        self._redeemed_on(event.redeemed.campaign, event.day)
        if event.redeemed.issued_on != event.channel:
            _bump(self.channel_links, f"{event.redeemed.issued_on.value}>{event.channel.value}")

    def _redeemed_on(self, campaign: str, day: str) -> None:
        self.coupon_campaigns[campaign] = max(day, self.coupon_campaigns.get(campaign, day))

    def _cancel(self, event: TrackedEvent) -> None:
        assert event.order_id is not None, "an order_cancelled event has an order id"
        key = order_key(event.order_id)
        entry = self.orders_index.get(key, OrderEntry())
        if entry.cancelled:
            return
        self.orders_index[key] = entry.model_copy(update={"cancelled": True})
        if entry.total is not None and entry.day is not None:
            self._count_cancellation(entry.total, entry.day)

    def _count_cancellation(self, amount: int, day: str) -> None:
        self.values["cancelled"] += amount
        self.values["cancelled_orders"] += 1
        self._add_day(day, DayBucket(cancelled=amount))

    def _return(self, event: TrackedEvent) -> None:
        assert event.order_id is not None, "an order_returned event has an order id"
        key = order_key(event.order_id)
        entry = self.orders_index.get(key, OrderEntry())
        if entry.returned == 0 and event.amount > 0:  # the first money back makes a returned order
            self.values["returned_orders"] += 1
        self.orders_index[key] = entry.model_copy(update={"returned": entry.returned + event.amount})
        self.values["returned"] += event.amount
        self._add_day(event.day, DayBucket(returned=event.amount))
        if entry.day is not None:
            self._add_day(entry.day, DayBucket(order_returns=event.amount))

    def absorb(self, other: Aggregates) -> None:
        for target, source in (
            (self.counts, other.counts),
            (self.channels, other.channels),
            (self.categories, other.categories),
            (self.channel_links, other.channel_links),
        ):
            for key, value in source.items():
                _bump(target, key, value)
        for key in ("orders", "gross", "returned", "cancelled", "cancelled_orders", "returned_orders"):
            self.values[key] += getattr(other, key)
        for moment in (other.first_seen, other.last_seen):
            if moment is not None:
                self._seen(moment)
        if other.last_order_at is not None:
            last = self.values["last_order_at"]
            self.values["last_order_at"] = max(last, other.last_order_at) if last else other.last_order_at
        for campaign, day in other.coupon_campaigns.items():
            self._redeemed_on(campaign, day)
        for day, bucket in other.daily.items():
            self._add_day(day, bucket)
        for order_id, entry in other.order_index.items():
            self._absorb_order(order_id, entry)

    def _absorb_order(self, order_id: str, theirs: OrderEntry) -> None:
        """One order known to both profiles is counted once, as if one person had made it.

        Each side booked the order as it knew it (its total, its cancellation, its returns
        against its day); both bookings are taken back and the order as now known is booked.
        """
        ours = self.orders_index.get(order_id)
        if ours is None:
            self.orders_index[order_id] = theirs
            return
        merged = OrderEntry(
            total=ours.total if ours.total is not None else theirs.total,
            day=ours.day or theirs.day,
            cancelled=ours.cancelled or theirs.cancelled,
            returned=ours.returned + theirs.returned,
        )
        self._book(ours, -1)
        self._book(theirs, -1)
        self._book(merged, 1)
        self.orders_index[order_id] = merged

    def _book(self, entry: OrderEntry, sign: int) -> None:
        """Add (or with ``sign`` -1 take back) what one order entry counts in the totals."""
        if entry.returned > 0:
            self.values["returned_orders"] += sign
        if entry.total is None or entry.day is None:
            return
        cancelled = entry.total if entry.cancelled else 0
        self.values["orders"] += sign
        self.values["gross"] += sign * entry.total
        self.values["cancelled"] += sign * cancelled
        self.values["cancelled_orders"] += sign * int(entry.cancelled)
        self._add_day(
            entry.day,
            DayBucket(
                orders=sign,
                gross=sign * entry.total,
                cancelled=sign * cancelled,
                order_returns=sign * entry.returned,
            ),
        )

    def _add_day(self, day: str, bucket: DayBucket) -> None:
        current = self.daily.get(day)
        self.daily[day] = bucket if current is None else current.merged(bucket)

    def frozen(self, cutoff: str) -> Aggregates:
        return Aggregates(
            **self.values,
            counts=self.counts,
            channels=self.channels,
            categories=heaviest_categories(self.categories),
            order_index=newest_orders(self.orders_index, cutoff),
            daily={day: bucket for day, bucket in sorted(self.daily.items()) if day >= cutoff},
            recent_event_ids=tuple(self.recent),
            channel_links=self.channel_links,
            coupon_campaigns=latest_campaigns(self.coupon_campaigns),
        )


def latest_campaigns(campaigns: dict[str, str]) -> dict[str, str]:
    """The :data:`MAX_COUPON_CAMPAIGNS` latest redeemed, ties by name: the same in any event order."""
    if len(campaigns) <= MAX_COUPON_CAMPAIGNS:
        return campaigns
    ranked = sorted(campaigns.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return dict(ranked[:MAX_COUPON_CAMPAIGNS])


def heaviest_categories(categories: dict[str, int]) -> dict[str, int]:
    """The top :data:`MAX_CATEGORIES` by weight, ties by name: the same whatever the order of events."""
    if len(categories) <= MAX_CATEGORIES:
        return categories
    ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:MAX_CATEGORIES])


def newest_orders(index: dict[str, OrderEntry], cutoff: str) -> dict[str, OrderEntry]:
    """The orders of the retention window, at most :data:`MAX_ORDER_ENTRIES`, newest day first;
    entries without a day (a return or cancellation whose order was never seen) come last."""
    kept = {key: entry for key, entry in index.items() if entry.day is None or entry.day >= cutoff}
    if len(kept) <= MAX_ORDER_ENTRIES:
        return kept
    ranked = sorted(kept.items(), key=lambda item: (item[1].day or "", item[0]), reverse=True)
    return dict(ranked[:MAX_ORDER_ENTRIES])


def _bump(counter: dict[str, int], key: str, by: int = 1) -> None:
    counter[str(key)] = counter.get(str(key), 0) + by


def _add_counts(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    total = dict(left)
    for key, value in right.items():
        _bump(total, key, value)
    return total


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


def parse_day(day: str) -> date:
    return date.fromisoformat(day)

"""What a profile's events add up to: lifetime totals and per-UTC-day buckets.

Counts and sums commute and times take min or max, so a late or shuffled stream of the
events a profile accepted gives the same aggregates as a rebuild from the log. Order events
follow the order rules (:mod:`profilegate.domain.orders`): a return or cancellation is
accepted only after its order, by arrival and by event time, which is the order the rebuild
folds them in. Window metrics read at most one bucket per day of the window, however many
events the customer ever had.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from profilegate.domain.events import EventType, TrackedEvent
from profilegate.domain.money import Currencies, average
from profilegate.domain.orders import OrderEntry as OrderEntry  # re-exported: where it used to live
from profilegate.domain.orders import OrderRefused, entry_after, is_replay, order_refusal

# Replays are recognised among the last this many events applied to a profile. Ids are kept
# as 48-bit digests (6 bytes each in storage), so the guard stays small on every profile.
RECENT_EVENT_IDS = 500
# A profile keeps its heaviest categories only: the top this many by weight, ties by name.
MAX_CATEGORIES = 500
# Orders known to a profile (``order_index``): those of the retention window, at most this
# many, the newest by day kept; entries an older version made for returns or cancellations of
# orders never seen go first.
MAX_ORDER_ENTRIES = 5_000
# Money in refusals is named in the base currency; amounts are in its minor units already.
BASE_ONLY = Currencies()
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
        """Net: what the orders not cancelled are worth after their returns, per such order
        (``net`` already takes each cancelled order's worth back). docs/metrics.md"""
        return average(self.net, self.orders - self.cancelled_orders)

    def average_order_value_gross(self) -> int | None:
        """Gross: the orders' totals per order, cancelled ones included, returns not taken off."""
        return average(self.gross, self.orders)

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


@dataclass(frozen=True)
class Applied:
    """The aggregates after a batch, the events applied, and those refused (by event id)."""

    aggregates: Aggregates
    applied: list[TrackedEvent]
    refused: dict[str, OrderRefused] = field(default_factory=dict)


def apply_events(
    aggregates: Aggregates, events: Iterable[TrackedEvent], now: datetime, retention_days: int
) -> tuple[Aggregates, list[TrackedEvent]]:
    """Apply the events not applied before; return the new aggregates and those applied."""
    done = apply_checked(aggregates, events, now, retention_days)
    return done.aggregates, done.applied


def apply_checked(
    aggregates: Aggregates,
    events: Iterable[TrackedEvent],
    now: datetime,
    retention_days: int,
    currencies: Currencies = BASE_ONLY,
) -> Applied:
    """Apply, in the order given, the events not applied before that the order rules allow
    (:mod:`profilegate.domain.orders`); the others are refused, with the reason."""
    state = _Mutable(aggregates, currencies)
    done = state.apply_all(events)
    fresh = [event_digest(event.id) for event in done]
    state.recent = (list(aggregates.recent_event_ids) + fresh)[-RECENT_EVENT_IDS:]
    return Applied(state.frozen(cutoff_day(now, retention_days)), done, state.refused)


def order_refusals(
    aggregates: Aggregates, events: Iterable[TrackedEvent], currencies: Currencies = BASE_ONLY
) -> dict[str, OrderRefused]:
    """The events of a batch the order rules refuse, by event id, as ``apply_checked`` would
    refuse them: decided against the order index alone (earlier events of the batch count)."""
    index = dict(aggregates.order_index)
    seen = set(aggregates.recent_event_ids)
    refused: dict[str, OrderRefused] = {}
    for event in events:
        digest = event_digest(event.id)
        if digest in seen or event.order_id is None or event.type not in _RANK:
            continue
        key = order_key(event.order_id)
        entry = index.get(key)
        if is_replay(entry, event):
            continue
        seen.add(digest)  # refused or counted: a second copy in the batch is a duplicate
        refusal = order_refusal(entry, event, currencies)
        if refusal is not None:
            refused[event.id] = refusal
            continue
        index[key] = entry_after(entry, event)
    return refused


def fold_events(events: Iterable[TrackedEvent], now: datetime, retention_days: int) -> Aggregates:
    """The aggregates of these events alone, as a rebuild from the log makes them.

    They are applied in event-time order, an order before its returns and cancellations at the
    same instant, so the ids kept against replays are the newest by event time, not the ones
    that happened to be logged last. The order rules hold as in tracking; a return that asks
    for more than is left of its order (logged by an older version) counts what is left.
    """
    ordered = sorted(events, key=lambda event: (event.at, _RANK.get(event.type, 0), event.id))
    state = _Mutable(Aggregates(), BASE_ONLY, lenient=True)
    done = state.apply_all(ordered)
    state.recent = [event_digest(event.id) for event in done][-RECENT_EVENT_IDS:]
    return state.frozen(cutoff_day(now, retention_days))


# At one instant an order comes before its returns, and its returns before its cancellation.
_RANK = {EventType.ORDER_COMPLETED: 0, EventType.ORDER_RETURNED: 1, EventType.ORDER_CANCELLED: 2}


def merge_aggregates(winner: Aggregates, loser: Aggregates, now: datetime, retention_days: int) -> Aggregates:
    """Two profiles' aggregates as if one person had made every event."""
    state = _Mutable(winner, BASE_ONLY)
    state.absorb(loser)
    state.recent = list(dict.fromkeys(winner.recent_event_ids + loser.recent_event_ids))[-RECENT_EVENT_IDS:]
    return state.frozen(cutoff_day(now, retention_days))


def cutoff_day(now: datetime, retention_days: int) -> str:
    """Buckets before this day are beyond every window and are pruned."""
    return (now.date() - timedelta(days=retention_days)).isoformat()


class _Mutable:
    """Aggregates being changed. ``lenient`` (the fold of logged events): what the order rules
    refuse is counted as ``_as_logged`` says, never refused."""

    def __init__(self, base: Aggregates, currencies: Currencies, *, lenient: bool = False) -> None:
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
        self.currencies, self.lenient = currencies, lenient
        self.seen = set(base.recent_event_ids)
        self.refused: dict[str, OrderRefused] = {}
        self.refused_ids: set[str] = set()

    def apply_all(self, events: Iterable[TrackedEvent]) -> list[TrackedEvent]:
        """Apply each event not seen before and allowed; the events applied (as counted)."""
        applied: list[TrackedEvent] = []
        for event in events:
            digest = event_digest(event.id)
            if digest in self.seen or digest in self.refused_ids:
                continue
            counted = self._allowed(event)
            if counted is None:
                self.refused_ids.add(digest)  # a second copy in the call is no news either
                continue
            self.seen.add(digest)
            self.apply(counted)
            applied.append(counted)
        return applied

    def _allowed(self, event: TrackedEvent) -> TrackedEvent | None:
        """The event as it counts, or None: a replay of the order's own event, or refused."""
        if event.order_id is None:
            return event
        entry = self.orders_index.get(order_key(event.order_id))
        if is_replay(entry, event):
            return None
        refusal = order_refusal(entry, event, self.currencies)
        if refusal is None:
            return event
        if self.lenient:
            return _as_logged(entry, event)
        self.refused[event.id] = refusal
        return None

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
                self._rebook(event)
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
        known = self.orders_index.get(order_key(event.order_id))
        if known is not None and known.counted:
            return  # counted already, under another event id (only the lenient fold lets it through)
        last = self.values["last_order_at"]
        self.values["last_order_at"] = event.at if last is None else max(last, event.at)
        self._coupon(event)
        self._rebook(event)

    def _rebook(self, event: TrackedEvent) -> None:
        """Take back what the event's order counted, and count it as it stands after the event."""
        assert event.order_id is not None, "an order event has an order id"
        key = order_key(event.order_id)
        before = self.orders_index.get(key)
        after = entry_after(before, event)
        if before is not None:
            self._book(before, -1)
        self._book(after, 1)
        self.orders_index[key] = after

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

    def _return(self, event: TrackedEvent) -> None:
        self.values["returned"] += event.amount
        self._add_day(event.day, DayBucket(returned=event.amount))
        self._rebook(event)

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
        against its day); both bookings are taken back and the order as now known is booked:
        the side that counted it first, the returns of both (together at most its total), and
        cancelled if either side cancelled it (what is left after the returns).
        """
        ours = self.orders_index.get(order_id)
        if ours is None:
            self.orders_index[order_id] = theirs
            return
        merged = _merged_entry(ours, theirs)
        self._book(ours, -1)
        self._book(theirs, -1)
        self._book(merged, 1)
        # Money given back beyond the order's total was counted by both sides: once is enough.
        self.values["returned"] -= ours.returned + theirs.returned - merged.returned
        self.orders_index[order_id] = merged

    def _book(self, entry: OrderEntry, sign: int) -> None:
        """Add (or with ``sign`` -1 take back) what one order entry counts in the totals."""
        if entry.returned > 0:  # the first money back makes a returned order
            self.values["returned_orders"] += sign
        if entry.total is None or entry.day is None:
            return
        returns, cancelled = min(entry.returned, entry.total), entry.cancelled_amount
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
                order_returns=sign * returns,
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


def _as_logged(entry: OrderEntry | None, event: TrackedEvent) -> TrackedEvent | None:
    """How the fold counts a logged event the order rules refuse (logged by an older version, or
    counted on two profiles merged since): one of an order it does not know, or dated before
    it, not at all; an order again as an event, not as an order; a return, for at most what is
    left of its order (nothing of a cancelled one)."""
    if entry is None or not entry.counted or (entry.at is not None and event.at < entry.at):
        return None
    if event.type is EventType.ORDER_RETURNED:
        return event.model_copy(update={"amount": min(event.amount, entry.left)})
    return event


def _merged_entry(ours: OrderEntry, theirs: OrderEntry) -> OrderEntry:
    """An order two profiles knew, as one: counted by the side that counted it (ours first)."""
    first, other = (ours, theirs) if ours.counted or not theirs.counted else (theirs, ours)
    returned = first.returned + other.returned
    times = [moment for moment in (first.returned_at, other.returned_at) if moment is not None]
    return first.model_copy(
        update={
            "cancelled": first.cancelled or other.cancelled,
            "returned": returned if first.total is None else min(returned, first.total),
            "returned_at": max(times, default=None),
        }
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

"""Shop metrics over a range of shop days, computed from the days' rollups (``shop_days``).

Every metric is defined in docs/metrics.md; the definitions in short:

- visitors: distinct profiles with any event in the period; buyers: with an order;
- conversion rate = buyers / visitors; average order value gross = revenue / orders, and net =
  what the period's orders not cancelled are worth after their returns, per such order (returns
  and cancellations tracked up to the range's last day, on any channel), as on the profile;
- return rate = returns / orders, both counted in the period;
- a customer is a profile with an order; new customers: buyers with no order before the
  period; returning: buyers with an order before it; repeat purchase rate = returning / buyers;
- a customer churns ``churn_days`` after their last order; churned customers: those whose
  churn day falls in the period; active customers at the start: an order in the
  ``churn_days`` before it; customer growth rate = (new - churned) / active at the start;
- product page seconds: the median and mean engaged time of the period's product views
  (:mod:`profilegate.domain.engaged_time`);
- breakdowns by traffic source, product and payment method
  (:mod:`profilegate.domain.shop_breakdowns`).
"""

import bisect
import calendar
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from profilegate.domain.engaged_time import MAX_SESSION_TIMEOUT, EngagedTime, engaged_time
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel
from profilegate.domain.money import average
from profilegate.domain.shop_breakdowns import Breakdowns, breakdowns
from profilegate.domain.shop_days import DEFAULT_SESSION_TIMEOUT, DayRollup

NO_VIEWS = EngagedTime(0, ())
NO_BREAKDOWNS = Breakdowns()
MAX_RANGE_DAYS = 1830  # five years of days in one answer
_DAY = timedelta(days=1)


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"


@dataclass(frozen=True)
class MetricsQuery:
    first: date
    last: date
    granularity: Granularity = Granularity.DAY
    channel: Channel | None = None
    churn_days: int = 90
    session_timeout: timedelta = DEFAULT_SESSION_TIMEOUT

    def __post_init__(self) -> None:
        check_range(self.first, self.last)
        if not timedelta(0) < self.session_timeout <= MAX_SESSION_TIMEOUT:
            raise InvalidInput("sessionTimeout", f"must be more than 0 and at most {MAX_SESSION_TIMEOUT}")


def check_range(first: date, last: date) -> None:
    """A range of shop days from ``first`` to ``last``, both included, asked for by ``from`` and ``to``."""
    if last < first:
        raise InvalidInput("to", f"{last} lies before from ({first})")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput("to", f"the range spans more than {MAX_RANGE_DAYS} days")


@dataclass(frozen=True)
class PeriodMetrics:
    first: date
    last: date
    visitors: int
    buyers: int
    orders: int
    revenue: int
    returns: int
    returned: int
    new_customers: int
    returning_customers: int
    churned_customers: int
    active_customers_at_start: int
    product_page: EngagedTime = NO_VIEWS
    breakdowns: Breakdowns = NO_BREAKDOWNS
    kept_orders: int = 0  # the period's orders not cancelled (up to the range's last day)
    kept_worth: int = 0  # what those are worth after their returns (up to the range's last day)

    @property
    def conversion_rate(self) -> float | None:
        return _ratio(self.buyers, self.visitors)

    @property
    def average_order_value_gross(self) -> int | None:
        return average(self.revenue, self.orders)

    @property
    def average_order_value_net(self) -> int | None:
        return average(self.kept_worth, self.kept_orders)

    @property
    def net_average_order_value(self) -> int | None:
        """(revenue - returned) / orders: the deprecated ``netAverageOrderValue``, which takes
        off the period's returns whatever orders they were of, and no cancellation."""
        return average(self.revenue - self.returned, self.orders)

    @property
    def return_rate(self) -> float | None:
        return _ratio(self.returns, self.orders)

    @property
    def repeat_purchase_rate(self) -> float | None:
        return _ratio(self.returning_customers, self.buyers)

    @property
    def customer_growth_rate(self) -> float | None:
        return _ratio(self.new_customers - self.churned_customers, self.active_customers_at_start)


@dataclass(frozen=True)
class ShopReport:
    total: PeriodMetrics
    periods: list[PeriodMetrics]
    by_channel: dict[Channel, PeriodMetrics]


@dataclass(frozen=True)
class Settled:
    """What became of orders after they were placed, on any channel, up to a last day:
    ``returned`` order key -> money returned, ``cancelled`` the keys of cancelled orders."""

    returned: dict[str, int]
    cancelled: frozenset[str]

    def worth(self, key: str, total: int) -> int:
        """What an order not cancelled is worth after its returns (never below 0)."""
        return max(0, total - self.returned.get(key, 0))


def settled(rollups: Iterable[DayRollup], last: date) -> Settled:
    """From the all-channels rollups up to ``last`` (a return or cancellation may come through
    another channel than its order)."""
    returned: dict[str, int] = {}
    cancelled: set[str] = set()
    for rollup in rollups:
        if rollup.channel is None and rollup.day <= last:
            for event, order in rollup.return_orders.items():
                returned[order] = returned.get(order, 0) + rollup.returns.get(event, 0)
            cancelled |= rollup.cancellations.keys()
    return Settled(returned, frozenset(cancelled))


def shop_report(rollups: Iterable[DayRollup], query: MetricsQuery) -> ShopReport:
    """``rollups``: every stored rollup up to the day after ``query.last`` (the earlier ones tell
    who bought before; the day after ends the engaged time of the last day's late views)."""
    stored = list(rollups)
    after = settled(stored, query.last)
    scoped = _History([r for r in stored if r.channel is query.channel], query, after)
    by_channel = {
        channel: _History([r for r in stored if r.channel is channel], query, after).metrics(
            query.first, query.last
        )
        for channel in Channel
        if query.channel in (None, channel)
    }
    return ShopReport(
        total=scoped.metrics(query.first, query.last),
        periods=[scoped.metrics(first, last) for first, last in periods(query)],
        by_channel={channel: found for channel, found in by_channel.items() if found.visitors},
    )


def periods(query: MetricsQuery) -> Iterator[tuple[date, date]]:
    """The periods of the range, first and last day each, clipped to the range."""
    start = query.first
    while start <= query.last:
        end = min(_period_end(start, query.granularity), query.last)
        yield start, end
        start = end + timedelta(days=1)


def _period_end(start: date, granularity: Granularity) -> date:
    match granularity:
        case Granularity.DAY:
            return start
        case Granularity.WEEK:
            return start + timedelta(days=6 - start.weekday())
        case Granularity.MONTH:
            return start.replace(day=calendar.monthrange(start.year, start.month)[1])


class _History:
    """The rollups of one scope (all channels or one), by day."""

    def __init__(self, rollups: Sequence[DayRollup], query: MetricsQuery, after: Settled) -> None:
        self._after = after
        self._by_day = {rollup.day: rollup for rollup in rollups}
        self._days = sorted(self._by_day)
        self._churn = timedelta(days=query.churn_days)
        self._session_timeout = query.session_timeout
        self._first_order: dict[str, date] = {}
        for day in reversed(self._days):
            self._first_order.update(dict.fromkeys(self._by_day[day].buyers, day))

    def metrics(self, first: date, last: date) -> PeriodMetrics:
        inside = self._within(first, last)
        buyers = self._buyers(first, last)
        new = sum(1 for buyer in buyers if self._first_order[buyer] >= first)
        placed = {key: total for r in inside for key, total in r.orders.items()}
        kept = {key: total for key, total in placed.items() if key not in self._after.cancelled}
        return PeriodMetrics(
            first=first,
            last=last,
            visitors=len(set().union(*(r.visitors for r in inside))),
            buyers=len(buyers),
            orders=sum(len(r.orders) for r in inside),
            revenue=sum(sum(r.orders.values()) for r in inside),
            returns=sum(len(r.returns) for r in inside),
            returned=sum(sum(r.returns.values()) for r in inside),
            new_customers=new,
            returning_customers=len(buyers) - new,
            churned_customers=self._churned(first, last),
            active_customers_at_start=len(self._buyers(first - self._churn, first - _DAY)),
            product_page=engaged_time(inside, self._by_day, self._session_timeout),
            breakdowns=breakdowns(inside),
            kept_orders=len(kept),
            kept_worth=sum(self._after.worth(key, total) for key, total in kept.items()),
        )

    def _churned(self, first: date, last: date) -> int:
        """Customers whose last order up to ``last`` lies ``churn_days`` before a day of the
        period: an order from ``first - churn`` to ``last - churn``, none after it up to ``last``."""
        lapsed = self._buyers(first - self._churn, last - self._churn)
        return len(lapsed - self._buyers(last - self._churn + _DAY, last))

    def _within(self, first: date, last: date) -> list[DayRollup]:
        days = self._days[bisect.bisect_left(self._days, first) : bisect.bisect_right(self._days, last)]
        return [self._by_day[day] for day in days]

    def _buyers(self, first: date, last: date) -> set[str]:
        return set().union(*(r.buyers for r in self._within(first, last)))


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator

"""The shop's day rollups agree with a direct computation over the tracked events, and a
rebuild from the event log gives the same rollups, whatever the stream (replays, ids reused
for another person, late and out-of-order events, returns and cancellations, a DST change in
the shop's time zone, sessions across midnight): engaged time on product pages and the gross
and net average order values (the profile's and the shop's, one definition) included."""

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from profilegate.domain.events import MAX_ENGAGED_SECONDS, Channel
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.refs import ProfileRef
from profilegate.domain.shop_days import ShopRules
from profilegate.domain.shop_metrics import Granularity, MetricsQuery, PeriodMetrics, periods
from profilegate.service.resolve import find_profile
from profilegate.service.shop_metrics import rebuild_shop_days, shop_metrics
from profilegate.service.tracking import Status, track
from profilegate.storage.store import Repositories
from tests.conftest import fresh_repositories
from tests.service.raw_events import event, order
from tests.service.test_rebuild import default_tracking

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")  # summer time ends on 2026-10-25, inside the stream's range
FIRST_DAY = date(2026, 9, 20)
VISITORS = ("a0", "a1", "a2", "a3")
CHANNELS = ("web", "store", "app")
KINDS = ("page_view", "product_view", "order_completed", "order_returned", "order_cancelled")
CHURN_DAYS = 14
amounts = st.integers(min_value=1, max_value=20_000).map(lambda cents: str(Decimal(cents) / 100))
SESSION_TIMEOUT = timedelta(minutes=20)
# Minutes before NOW (10:00Z): anywhere in 60 days, or within an hour around two of Berlin's
# midnights, the night into 2026-11-20 (23:00Z) and the one into the 25-hour 2026-10-25
# (22:00Z), so sessions, gaps just past the timeout and sessions across midnight occur.
moments = st.one_of(
    st.integers(min_value=0, max_value=60 * 24 * 60),
    *[st.integers(640, 700), st.integers(26 * 24 * 60 + 690, 26 * 24 * 60 + 750)] * 2,
).map(lambda m: NOW - timedelta(minutes=m))
engaged = st.one_of(st.none(), st.none(), st.none(), st.integers(0, 5000), st.floats(0, 100, allow_nan=False))


@st.composite
def raw_event(draw: st.DrawFn) -> dict[str, Any]:
    kind, who, channel = (
        draw(st.sampled_from(KINDS)),
        draw(st.sampled_from(VISITORS)),
        draw(st.sampled_from(CHANNELS)),
    )
    event_id, at, ref = f"e{draw(st.integers(0, 19))}", draw(moments), {"anonymousId": who}
    # A visitor's orders, sent again under other event ids (refused then), and returns of them
    # (refused when unknown, dated before their order or over what is left).
    order_id = f"order-{who}-{draw(st.integers(0, 3))}"
    if kind == "order_completed":
        placed = order(event_id, order_id, draw(amounts), at, ref, channel)
        method = draw(st.sampled_from((None, "card", "PayPal")))
        return (
            placed
            if method is None
            else {**placed, "properties": {**placed["properties"], "paymentMethod": method}}
        )
    if kind == "order_returned":
        return event(event_id, kind, at, ref, channel, orderId=order_id, amount=draw(amounts))
    if kind == "order_cancelled":  # refused when unknown, or dated before its order or a return
        return event(event_id, kind, at, ref, channel, orderId=order_id)
    if kind == "product_view":
        seconds = draw(engaged)
        extra = {} if seconds is None else {"engagedSeconds": seconds}
        return event(event_id, kind, at, ref, channel, sku="A1", **extra)
    came_from = draw(
        st.sampled_from(
            ({}, {"utmSource": "News", "utmMedium": "email"}, {"referrer": "https://a.example/x"})
        )
    )
    return event(event_id, kind, at, ref, channel, url="https://shop.example/", **came_from)


@dataclass
class Day:
    visitors: set[str] = field(default_factory=set)
    buyers: set[str] = field(default_factory=set)
    orders: list[int] = field(default_factory=list)
    returns: list[int] = field(default_factory=list)


def direct_engaged_seconds(
    accepted: list[dict[str, Any]], channel: str | None, first: date, last: date
) -> Any:
    """Product views of the period and the engaged seconds of those measured, sorted: the
    reported (capped) seconds, or the gap to the visitor's next later event within the timeout."""
    scoped = [raw for raw in accepted if channel in (None, raw["channel"])]
    views, seconds = 0, list[float]()
    for raw in scoped:
        at = datetime.fromisoformat(raw["at"])
        if raw["type"] != "product_view" or not first <= at.astimezone(BERLIN).date() <= last:
            continue
        views += 1
        if "engagedSeconds" in raw["properties"]:
            seconds.append(float(min(raw["properties"]["engagedSeconds"], MAX_ENGAGED_SECONDS)))
            continue
        later = [
            datetime.fromisoformat(other["at"]) - at
            for other in scoped
            if other["anonymousId"] == raw["anonymousId"] and datetime.fromisoformat(other["at"]) > at
        ]
        if later and min(later) <= SESSION_TIMEOUT:
            seconds.append(min(later).total_seconds())
    return views, sorted(seconds)


def direct_days(accepted: list[dict[str, Any]], channel: str | None) -> dict[date, Day]:
    """Each shop day's visitors, buyers, order totals and returned amounts, from the raw events."""
    days: dict[date, Day] = defaultdict(Day)
    for raw in accepted:
        if channel not in (None, raw["channel"]):
            continue
        day = days[datetime.fromisoformat(raw["at"]).astimezone(BERLIN).date()]
        day.visitors.add(raw["anonymousId"])
        if raw["type"] == "order_completed":
            day.buyers.add(raw["anonymousId"])
            day.orders.append(cents(raw["properties"]["total"]))
        elif raw["type"] == "order_returned":
            day.returns.append(cents(raw["properties"]["amount"]))
    return days


async def assert_the_profiles_agree(repos: Repositories, accepted: list[dict[str, Any]]) -> None:
    """Every order and return the shop counts, its visitor's profile counts: gross and returned."""
    for visitor in VISITORS:
        mine = [raw for raw in accepted if raw["anonymousId"] == visitor]
        profile = await find_profile(
            repos, ProfileRef(identity=normalise_identity(IdentityType.ANONYMOUS_ID, visitor))
        )
        gross = sum(cents(raw["properties"]["total"]) for raw in mine if raw["type"] == "order_completed")
        returned = sum(cents(raw["properties"]["amount"]) for raw in mine if raw["type"] == "order_returned")
        found = (0, 0) if profile is None else (profile.aggregates.gross, profile.aggregates.returned)
        assert found == (gross, returned), visitor
        assert returned <= gross
        averages: tuple[int | None, int | None] = (None, None)
        if profile is not None:
            counted = profile.aggregates
            averages = (counted.average_order_value_gross(), counted.average_order_value())
        assert averages == direct_averages(mine, None, (date.min, date.max), date.max), visitor


def direct_averages(
    accepted: list[dict[str, Any]], channel: str | None, period: tuple[date, date], last: date
) -> tuple[int | None, int | None]:
    """Gross: the totals of the orders placed in the period (on ``channel``) per order. Net: those
    not cancelled, less their returns, per such order; returns and cancellations up to ``last``,
    on any channel. Rounded half to even."""
    placed: dict[str, int] = {}
    returned: dict[str, int] = defaultdict(int)
    cancelled: set[str] = set()
    for raw in accepted:
        day, order_id = shop_day(raw), raw["properties"].get("orderId")
        if raw["type"] == "order_completed" and channel in (None, raw["channel"]):
            if period[0] <= day <= period[1]:
                placed[order_id] = cents(raw["properties"]["total"])
        elif raw["type"] == "order_returned" and day <= last:
            returned[order_id] += cents(raw["properties"]["amount"])
        elif raw["type"] == "order_cancelled" and day <= last:
            cancelled.add(order_id)
    kept = {order_id: total - returned[order_id] for order_id, total in placed.items()}
    kept = {order_id: worth for order_id, worth in kept.items() if order_id not in cancelled}
    return (
        None if not placed else round(Fraction(sum(placed.values()), len(placed))),
        None if not kept else round(Fraction(sum(kept.values()), len(kept))),
    )


def shop_day(raw: dict[str, Any]) -> date:
    return datetime.fromisoformat(raw["at"]).astimezone(BERLIN).date()


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def direct_period(days: dict[date, Day], first: date, last: date) -> dict[str, int]:
    inside = [d for day, d in days.items() if first <= day <= last]
    buyers = {b for d in inside for b in d.buyers}
    before = {b for day, d in days.items() if day < first for b in d.buyers}
    last_order: dict[str, date] = {}
    for day in sorted(days):
        if day <= last:
            last_order.update(dict.fromkeys(days[day].buyers, day))
    churn = timedelta(days=CHURN_DAYS)
    return {
        "visitors": len({v for d in inside for v in d.visitors}),
        "buyers": len(buyers),
        "orders": sum(len(d.orders) for d in inside),
        "revenue": sum(sum(d.orders) for d in inside),
        "returns": sum(len(d.returns) for d in inside),
        "returned": sum(sum(d.returns) for d in inside),
        "new_customers": len(buyers - before),
        "returning_customers": len(buyers & before),
        "churned_customers": sum(1 for day in last_order.values() if first <= day + churn <= last),
        "active_customers_at_start": len(
            {b for day, d in days.items() if first - churn <= day < first for b in d.buyers}
        ),
    }


def as_direct(found: PeriodMetrics) -> dict[str, int]:
    return {name: getattr(found, name) for name in direct_period({}, FIRST_DAY, FIRST_DAY)}


async def assert_agree(repos: Repositories, accepted: list[dict[str, Any]], query: MetricsQuery) -> None:
    report = await shop_metrics(repos, query)
    days = direct_days(accepted, None if query.channel is None else query.channel.value)
    channel = None if query.channel is None else query.channel.value
    for (first, last), found in [
        *zip(periods(query), report.periods, strict=True),
        ((query.first, query.last), report.total),
    ]:
        assert as_direct(found) == direct_period(days, first, last), (first, last)
        averages = (found.average_order_value_gross, found.average_order_value_net)
        assert averages == direct_averages(accepted, channel, (first, last), query.last), (first, last)
    assert payment_methods(report.total) == direct_payment_methods(accepted, query)


def payment_methods(found: PeriodMetrics) -> dict[str | None, tuple[int, int]]:
    return {row.method: (row.orders, row.revenue) for row in found.breakdowns.payment_methods}


def direct_payment_methods(
    accepted: list[dict[str, Any]], query: MetricsQuery
) -> dict[str | None, tuple[int, int]]:
    """Orders and revenue per lower-cased payment method; an order id sent twice counts once (the last)."""
    last_by_order: dict[str, dict[str, Any]] = {}
    for raw in accepted:
        day = datetime.fromisoformat(raw["at"]).astimezone(BERLIN).date()
        in_scope = query.channel is None or raw["channel"] == query.channel.value
        if raw["type"] == "order_completed" and in_scope and query.first <= day <= query.last:
            last_by_order[raw["properties"]["orderId"]] = raw["properties"]
    found: dict[str | None, tuple[int, int]] = {}
    for properties in last_by_order.values():
        method = properties.get("paymentMethod")
        method = None if method is None else method.lower()
        orders, revenue = found.get(method, (0, 0))
        found[method] = (orders + 1, revenue + cents(properties["total"]))
    return found


async def assert_engaged_time_agrees(
    repos: Repositories, accepted: list[dict[str, Any]], query: MetricsQuery
) -> None:
    """Over the stream's whole range, where its sessions are, and its periods."""
    query = dataclasses.replace(query, first=FIRST_DAY, last=NOW.date())
    report = await shop_metrics(repos, query)
    channel = None if query.channel is None else query.channel.value
    for (first, last), found in [
        *zip(periods(query), report.periods, strict=True),
        ((FIRST_DAY, NOW.date()), report.total),
    ]:
        engaged = direct_engaged_seconds(accepted, channel, first, last)
        assert (found.product_page.views, list(found.product_page.seconds)) == engaged, (first, last)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(raw_event(), min_size=1, max_size=6), min_size=1, max_size=8),
    granularity=st.sampled_from(Granularity),
    span=st.tuples(st.integers(0, 70), st.integers(0, 70)),
    channel=st.sampled_from((None, "web", "store")),
)
async def test_rollups_equal_a_direct_computation_and_a_rebuild(
    store_uri: str,
    batches: list[list[dict[str, Any]]],
    granularity: Granularity,
    span: tuple[int, int],
    channel: str | None,
) -> None:
    note(repr(batches))
    shop = ShopRules(zone=BERLIN, churn_days=CHURN_DAYS, session_timeout=SESSION_TIMEOUT)
    tracking = dataclasses.replace(default_tracking(), shop=shop)
    first, last = sorted(FIRST_DAY + timedelta(days=offset) for offset in span)
    scope = None if channel is None else Channel(channel)
    query = MetricsQuery(first, last, granularity, scope, CHURN_DAYS, SESSION_TIMEOUT)
    async with fresh_repositories(store_uri) as repos:
        accepted: list[dict[str, Any]] = []
        for batch in batches:
            result = await track(repos, batch, tracking, NOW)
            accepted += [
                raw for raw, o in zip(batch, result.results, strict=True) if o.status is Status.ACCEPTED
            ]
        await assert_the_profiles_agree(repos, accepted)
        await assert_agree(repos, accepted, query)
        await assert_engaged_time_agrees(repos, accepted, query)
        live = await repos.shop_days.up_to(NOW.date())
        await repos.shop_days.clear()
        await rebuild_shop_days(repos, tracking.shop)
        rebuilt = await repos.shop_days.up_to(NOW.date())
        assert sorted(rebuilt, key=lambda r: r.key) == sorted(live, key=lambda r: r.key)

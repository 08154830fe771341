"""The conformance table of segment rules: what each rule says of each profile.

Both interpreters run it, the predicate (tests/domain/test_segment_predicate.py) and the
compiled MongoDB query (tests/storage/test_segment_query.py). Expectations follow the node
meanings in ``profilegate.domain.segment_rules``. Aggregates are built as tracking leaves
them: lifetime figures include every day bucket's, and a profile was last seen no earlier
than its latest bucket's day. Times have millisecond precision, as BSON stores them.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.consents import Consent
from profilegate.domain.events import Channel, EventType
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_rules import (
    And,
    Comparison,
    HasConsent,
    HasExtension,
    HasIdentity,
    InSegment,
    Metric,
    MetricTest,
    Not,
    Or,
    RedeemedCoupon,
    Rule,
    Scalar,
    TraitContains,
    TraitExists,
    TraitIn,
    TraitTest,
    UsedChannel,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
MILLISECOND = timedelta(milliseconds=1)


class SegmentCase(NamedTuple):
    name: str
    rule: Rule
    expectations: list[tuple[Profile, bool]]


# -- rules


def trait(path: str, op: str, value: Scalar) -> TraitTest:
    return TraitTest(path=tuple(path.split(".")), op=Comparison(op), value=value)


def metric(
    name: str, op: str, value: int | float, *, last: int | None = None, event: str | None = None
) -> MetricTest:
    return MetricTest(
        metric=Metric(name),
        op=Comparison(op),
        value=value,
        window_days=last,
        event_type=None if event is None else EventType(event),
    )


def extension(name: str) -> HasExtension:
    return HasExtension(name=name)


def consent(purpose: str) -> HasConsent:
    return HasConsent(purpose=purpose)


BUYERS = metric("orders", ">=", 1)
SEGMENTS: dict[str, Rule] = {
    "buyers": BUYERS,
    "engaged": Or(
        clauses=(InSegment(key="buyers"), metric("events", ">=", 1, last=30, event="email_clicked"))
    ),
}


# -- profiles


def day_start(back: int) -> datetime:
    """Midnight (UTC) of the day ``back`` days before today (tomorrow for -1)."""
    return datetime.combine(TODAY - timedelta(days=back), datetime.min.time(), UTC)


def placed(
    orders: int = 1, gross: int = 0, *, returned: int = 0, cancelled: int = 0, order_returns: int = 0
) -> DayBucket:
    """A day with orders placed (and what was given back that day, or for them)."""
    return DayBucket(
        counts={EventType.ORDER_COMPLETED.value: orders},
        orders=orders,
        gross=gross,
        returned=returned,
        cancelled=cancelled,
        order_returns=order_returns,
    )


def seen(**counts: int) -> DayBucket:
    """A day with these events (by event type value) and no orders."""
    return DayBucket(counts=counts)


def history(
    days: Mapping[int, DayBucket] | None = None,
    *,
    older: DayBucket | None = None,
    cancelled_orders: int = 0,
    returned_orders: int = 0,
    channels: Mapping[str, int] | None = None,
    last_order_at: datetime | None = None,
) -> Aggregates:
    """Aggregates with day buckets ``days`` (by days back) after ``older``, pruned history.

    Lifetime figures are the sum of both; the profile was last seen at the start of its
    latest bucket's day, the earliest that bucket allows.
    """
    by_back = dict(days or {})
    total = older or DayBucket()
    for bucket in by_back.values():
        total = total.merged(bucket)
    return Aggregates(
        counts=total.counts,
        channels=dict(channels or {}),
        orders=total.orders,
        gross=total.gross,
        returned=total.returned,
        cancelled=total.cancelled,
        cancelled_orders=cancelled_orders,
        returned_orders=returned_orders,
        last_seen=day_start(min(by_back)) if by_back else None,
        last_order_at=last_order_at,
        daily={(TODAY - timedelta(days=back)).isoformat(): b for back, b in by_back.items()},
    )


def p(
    *,
    traits: Mapping[str, Any] | None = None,
    consents: Mapping[str, bool] | None = None,
    extensions: Mapping[str, datetime | None] | None = None,
    identities: tuple[IdentityType, ...] = (),
    aggregates: Aggregates | None = None,
) -> Profile:
    """A profile; ``case`` gives it its id. Extensions map to their expiry (None: none)."""
    return Profile(
        id="?",
        identities=tuple(Identity(type=kind, value=f"{kind.value}-1") for kind in identities),
        traits=dict(traits or {}),
        consents={
            purpose: Consent(purpose=purpose, granted=granted, at=NOW - timedelta(days=3), source="web")
            for purpose, granted in (consents or {}).items()
        },
        extensions={
            name: ExtensionGrant(
                name=name, at=NOW - timedelta(days=9), by="admin", reason="r", expires_at=expiry
            )
            for name, expiry in (extensions or {}).items()
        },
        aggregates=aggregates or Aggregates(),
        created_at=NOW - timedelta(days=400),
        updated_at=NOW,
    )


def case(name: str, rule: Rule, *expectations: tuple[Profile, bool]) -> SegmentCase:
    """A row of the table; profiles get ids unique in the table (``name`` and a number)."""
    slug = name.replace(" ", "-")
    return SegmentCase(
        name,
        rule,
        [
            (profile.model_copy(update={"id": f"{slug}-{index}"}), expected)
            for index, (profile, expected) in enumerate(expectations)
        ],
    )


def traits(**values: Any) -> Profile:
    return p(traits=values)


def pruned(older: DayBucket) -> Profile:
    """A profile whose only activity is older than its day buckets reach."""
    return p(aggregates=history(older=older))


def on(days_back: Mapping[int, DayBucket], **kwargs: Any) -> Profile:
    return p(aggregates=history(days_back, **kwargs))


def redeemed(**days_back: int) -> Profile:
    """A profile whose latest order with a coupon of each campaign was ``days_back`` days ago."""
    buckets = {back: placed(1, 5000) for back in days_back.values()}
    campaigns = {name: (TODAY - timedelta(days=back)).isoformat() for name, back in days_back.items()}
    aggregates = history(buckets).model_copy(update={"coupon_campaigns": campaigns})
    return p(aggregates=aggregates)


def last_order(at: datetime | None) -> Profile:
    return p(aggregates=history(older=placed(1, 1000), last_order_at=at))


def kept(
    orders: int, gross: int, *, returned_orders: int = 0, cancelled_orders: int = 0, cancelled: int = 0
) -> Profile:
    older = placed(orders, gross, cancelled=cancelled)
    return p(
        aggregates=history(older=older, returned_orders=returned_orders, cancelled_orders=cancelled_orders)
    )


NOBODY = p()

TRAIT_CASES = [
    case(
        "trait equals a string",
        trait("country", "=", "DE"),
        (traits(country="DE"), True),
        (traits(country="de"), False),
        (NOBODY, False),
        (traits(country=None), False),
        (traits(country=["DE"]), False),
        (traits(country=5), False),
    ),
    case(
        "not equal is false for an absent trait",
        trait("country", "!=", "DE"),
        (traits(country="AT"), True),
        (traits(country="DE"), False),
        (NOBODY, False),
        (traits(country=None), False),
        (traits(country=5), False),
        (traits(country=["AT"]), False),
    ),
    case(
        "not of a comparison is true for an absent trait",
        Not(clause=trait("country", "=", "DE")),
        (NOBODY, True),
        (traits(country="DE"), False),
        (traits(country="AT"), True),
        (traits(country=5), True),
    ),
    case(
        "numbers equal across int and float",
        trait("age", "=", 5),
        (traits(age=5), True),
        (traits(age=5.0), True),
        (traits(age="5"), False),
        (traits(age=6), False),
    ),
    case(
        "a boolean is not a number",
        trait("flag", "=", 1),
        (traits(flag=True), False),
        (traits(flag=1), True),
        (traits(flag=1.0), True),
        (traits(flag="1"), False),
    ),
    case(
        "a number is not a boolean",
        trait("flag", "=", True),
        (traits(flag=True), True),
        (traits(flag=1), False),
        (traits(flag="true"), False),
        (traits(flag=False), False),
    ),
    case(
        "a boolean differs only from booleans",
        trait("flag", "!=", False),
        (traits(flag=True), True),
        (traits(flag=False), False),
        (traits(flag=0), False),
        (traits(flag="false"), False),
        (NOBODY, False),
    ),
    case(
        "booleans have no order",
        trait("flag", "<", True),
        (traits(flag=False), False),
        (traits(flag=True), False),
        (traits(flag=0), False),
    ),
    case(
        "greater than a float",
        trait("age", ">", 4.5),
        (traits(age=5), True),
        (traits(age=4), False),
        (traits(age=4.5), False),
        (traits(age="5"), False),
        (traits(age=True), False),
        (traits(age=2**40), True),
        (traits(age=-(2**40)), False),
        (traits(age=[5]), False),
        (traits(age={"years": 5}), False),
    ),
    case(
        "at most a number",
        trait("age", "<=", 5),
        (traits(age=5), True),
        (traits(age=5.0), True),
        (traits(age=6), False),
        (traits(age=-1), True),
        (traits(age="1"), False),
        (traits(age=None), False),
        (traits(age=False), False),
    ),
    case(
        "strings order by code point",
        trait("name", "<", "b"),
        (traits(name="a"), True),
        (traits(name="B"), True),
        (traits(name="b"), False),
        (traits(name="é"), False),
        (traits(name=""), True),
        (traits(name="aé"), True),
        (traits(name=1), False),
    ),
    case(
        "strings beyond ASCII",
        trait("name", ">=", "é"),
        (traits(name="é"), True),
        (traits(name="z"), False),
        (traits(name="ü"), True),
        (traits(name="🛒"), True),
        (traits(name="ea"), False),
    ),
    case(
        "a string that looks like a field path",
        trait("code", "=", "$code"),
        (traits(code="$code"), True),
        (traits(code="code"), False),
        (NOBODY, False),
    ),
    case(
        "a nested trait",
        trait("address.city", "=", "Köln"),
        (traits(address={"city": "Köln"}), True),
        (traits(address={"city": "Koln"}), False),
        (traits(address="Köln"), False),
        (traits(address=[{"city": "Köln"}]), False),
        (traits(address={"city": None}), False),
        (NOBODY, False),
    ),
    case(
        "a deeply nested trait",
        trait("a.b.c.d", ">=", 1),
        (traits(a={"b": {"c": {"d": 2}}}), True),
        (traits(a={"b": {"c": {"d": "2"}}}), False),
        (traits(a={"b": {"c": [{"d": 2}]}}), False),
        (traits(a={"b": {"c": 2}}), False),
    ),
    case(
        "in a list of mixed values",
        TraitIn(path=("country",), values=("DE", "AT", 5, True)),
        (traits(country="DE"), True),
        (traits(country="CH"), False),
        (traits(country=5), True),
        (traits(country=5.0), True),
        (traits(country="5"), False),
        (traits(country=True), True),
        (traits(country=1), False),
        (traits(country=False), False),
        (traits(country=["DE"]), False),
        (NOBODY, False),
    ),
    case(
        "in a list of numbers",
        TraitIn(path=("age",), values=(18, 21.5)),
        (traits(age=18.0), True),
        (traits(age=21.5), True),
        (traits(age=21), False),
        (traits(age="18"), False),
    ),
    case(
        "a list contains a string, or a string a substring",
        TraitContains(path=("tags",), value="sale"),
        (traits(tags=["outdoor", "sale"]), True),
        (traits(tags=["Sale"]), False),
        (traits(tags="big sale"), True),
        (traits(tags="SALE"), False),
        (traits(tags=[]), False),
        (traits(tags=[["sale"]]), False),
        (traits(tags={"sale": 1}), False),
        (NOBODY, False),
    ),
    case(
        "a list contains a number",
        TraitContains(path=("sizes",), value=42),
        (traits(sizes=[40, 42]), True),
        (traits(sizes=[42.0]), True),
        (traits(sizes=["42"]), False),
        (traits(sizes="42"), False),
        (traits(sizes=42), False),
    ),
    case(
        "a list contains true, not 1",
        TraitContains(path=("flags",), value=True),
        (traits(flags=[True]), True),
        (traits(flags=[1]), False),
        (traits(flags="true"), False),
        (traits(flags=[False]), False),
    ),
    case(
        "a list contains 1, not true",
        TraitContains(path=("flags",), value=1),
        (traits(flags=[True]), False),
        (traits(flags=[1.0]), True),
    ),
    case(
        "every string contains the empty string",
        TraitContains(path=("name",), value=""),
        (traits(name="abc"), True),
        (traits(name=""), True),
        (traits(name=[]), False),
        (traits(name=[""]), True),
        (traits(name=5), False),
    ),
    case(
        "a trait exists unless null",
        TraitExists(path=("a", "b")),
        (traits(a={"b": 0}), True),
        (traits(a={"b": False}), True),
        (traits(a={"b": []}), True),
        (traits(a={"b": {}}), True),
        (traits(a={"b": [None, 1]}), True),
        (traits(a={"b": None}), False),
        (traits(a=[{"b": 1}]), False),
        (traits(a=None), False),
        (NOBODY, False),
    ),
]

METRIC_CASES = [
    case(
        "orders at the edges of a window",
        metric("orders", ">=", 2, last=30),
        (on({0: placed(1, 1000), 29: placed(1, 1000)}), True),
        (on({0: placed(1, 1000), 30: placed(1, 1000)}), False),
        (on({29: placed(2, 1000)}), True),
        (on({-1: placed(2, 1000)}), False),  # tomorrow is not in the window
        (on({45: placed(5, 1000)}), False),
        (pruned(placed(7, 7000)), False),
        (NOBODY, False),
    ),
    case(
        "orders today",
        metric("orders", "=", 1, last=1),
        (on({0: placed(1)}), True),
        (on({1: placed(1)}), False),
        (on({0: placed(2)}), False),
    ),
    case(
        "fewer orders than one in a window",
        metric("orders", "<", 1, last=30),
        (NOBODY, True),
        (on({30: placed(1)}), True),
        (on({29: placed(1)}), False),
        (on({3: seen(page_view=4)}), True),
    ),
    case(
        "lifetime orders",
        metric("orders", ">=", 3),
        (pruned(placed(3, 100)), True),
        (on({400: placed(2)}), False),
        (on({0: placed(1)}, older=placed(2)), True),
    ),
    case(
        "net spend at the money edge",
        metric("net_spend", ">", 50_000, last=30),
        (on({3: placed(1, 60_000, order_returns=10_000)}), False),
        (on({3: placed(1, 50_001)}), True),
        (on({3: placed(1, 60_000, cancelled=9_999)}), True),
        (on({3: placed(1, 50_001, cancelled=1)}), False),
        (on({3: placed(1, 60_000, returned=20_000)}), True),  # money back that day, for older orders
        (on({3: placed(1, 30_000), 29: placed(1, 20_001)}), True),
        (on({3: placed(1, 30_000), 30: placed(1, 20_001)}), False),
    ),
    case(
        "negative net spend",
        metric("net_spend", "<", 0, last=30),
        (NOBODY, False),
        (on({2: placed(1, 1000, order_returns=1500)}), True),
        (on({2: placed(1, 1000)}), False),
    ),
    case(
        "no spend in a window is zero",
        metric("net_spend", "<=", 0, last=30),
        (NOBODY, True),
        (on({40: placed(1, 5000)}), True),
        (on({2: placed(1, 1)}), False),
    ),
    case(
        "lifetime net spend subtracts all money given back",
        metric("net_spend", ">", 50_000),
        (pruned(placed(1, 60_000, returned=9_999)), True),
        (pruned(placed(1, 60_000, returned=10_000)), False),
        (on({10: placed(1, 60_000, returned=5_000, cancelled=5_000)}), False),
    ),
    case(
        "gross spend in a week",
        metric("gross_spend", ">=", 10_000, last=7),
        (on({6: placed(1, 10_000)}), True),
        (on({7: placed(1, 10_000)}), False),
        (on({0: placed(1, 9_999)}), False),
        (on({0: placed(1, 10_000, cancelled=10_000)}), True),
    ),
    case(
        "no lifetime gross spend",
        metric("gross_spend", "=", 0),
        (NOBODY, True),
        (on({5: placed(1, 1)}), False),
    ),
    case(
        "returns in a window are counted, not summed",
        metric("returns", ">=", 1, last=30),
        (on({5: seen(order_returned=1)}), True),
        (on({30: seen(order_returned=1)}), False),
        (pruned(seen(order_returned=3)), False),
        (on({5: placed(1, 100, returned=100)}), False),
    ),
    case(
        "lifetime returns",
        metric("returns", ">=", 2),
        (pruned(seen(order_returned=2)), True),
        (on({5: seen(order_returned=1)}), False),
    ),
    case(
        "events of a type in a week",
        metric("events", ">", 3, last=7, event="product_view"),
        (on({0: seen(product_view=2), 6: seen(product_view=2)}), True),
        (on({0: seen(product_view=2), 7: seen(product_view=2)}), False),
        (on({0: seen(product_view=3, page_view=5)}), False),
    ),
    case(
        "no events of a type, lifetime",
        metric("events", "=", 0, event="page_view"),
        (NOBODY, True),
        (on({3: seen(page_view=1)}), False),
        (on({3: seen(product_view=1)}), True),
    ),
    case(
        "days since the last order, at most",
        metric("days_since_last_order", "<=", 30),
        (last_order(day_start(29) - MILLISECOND), True),  # the last millisecond of 30 days back
        (last_order(day_start(30)), True),  # the first millisecond of 30 days back
        (last_order(day_start(31)), False),
        (last_order(NOW), True),
        (NOBODY, False),
    ),
    case(
        "days since the last order are calendar days",
        metric("days_since_last_order", ">=", 1),
        (last_order(day_start(0) - MILLISECOND), True),  # yesterday, ten hours ago
        (last_order(day_start(0)), False),
        (last_order(day_start(-1)), False),  # tomorrow: -1 days
    ),
    case(
        "days since the last order, not equal",
        metric("days_since_last_order", "!=", 5),
        (NOBODY, False),
        (last_order(day_start(4)), True),
        (last_order(day_start(5) + timedelta(hours=12)), False),
    ),
    case(
        "return rate above",
        metric("return_rate", ">", 0.3),
        (kept(3, 300, returned_orders=1), True),
        (kept(10, 1000, returned_orders=3), False),
        (kept(1, 100, returned_orders=1), True),
        (NOBODY, False),
    ),
    case(
        "the return rate without orders is zero",
        metric("return_rate", "=", 0),
        (NOBODY, True),
        (kept(2, 200), True),
        (kept(2, 200, returned_orders=1), False),
    ),
    case(
        "the average order value rounds half to even",
        metric("average_order_value", ">=", 2_500),
        (kept(2, 5_000), True),
        (kept(2, 4_999), True),  # 2499.5 rounds to 2500
        (kept(2, 4_997), False),  # 2498.5 rounds to 2498
        (kept(3, 7_500, cancelled_orders=1, cancelled=2_500), True),  # 5000 over 2 kept orders
        (kept(1, 100, cancelled_orders=1, cancelled=100), False),
        (NOBODY, False),
    ),
    case(
        "the average order value is absent without kept orders",
        metric("average_order_value", "!=", 0),
        (NOBODY, False),
        (kept(1, 0), False),
        (kept(1, 100), True),
    ),
]

PRESENCE_CASES = [
    case(
        "an extension in force",
        extension("vip"),
        (p(extensions={"vip": None}), True),
        (p(extensions={"vip": NOW + MILLISECOND}), True),
        (p(extensions={"vip": NOW}), False),
        (p(extensions={"vip": NOW - MILLISECOND}), False),
        (p(extensions={"employee": None}), False),
        (NOBODY, False),
    ),
    case(
        "not an extension",
        Not(clause=extension("employee")),
        (p(extensions={"employee": NOW - timedelta(days=1)}), True),
        (p(extensions={"employee": None}), False),
        (NOBODY, True),
    ),
    case(
        "a consent granted",
        consent("email_marketing"),
        (p(consents={"email_marketing": True}), True),
        (p(consents={"email_marketing": False}), False),
        (p(consents={"ads": True}), False),
        (NOBODY, False),
    ),
    case(
        "an identity of a type",
        HasIdentity(identity_type=IdentityType.EMAIL),
        (p(identities=(IdentityType.EMAIL,)), True),
        (p(identities=(IdentityType.PHONE, IdentityType.EMAIL)), True),
        (p(identities=(IdentityType.PHONE,)), False),
        (NOBODY, False),
    ),
    case(
        "a channel used",
        UsedChannel(channel=Channel.STORE),
        (on({}, channels={"store": 2}), True),
        (on({}, channels={"web": 3}), False),
        (on({}, channels={"store": 0}), False),
    ),
    case(
        "redeemed a coupon of a campaign in the last 30 days",
        RedeemedCoupon(campaign="spring", window_days=30),
        (redeemed(spring=0), True),
        (redeemed(spring=29), True),
        (redeemed(spring=30), False),
        (redeemed(autumn=1, spring=45), False),
        (redeemed(autumn=1), False),
        (NOBODY, False),
    ),
    case(
        "not redeemed a coupon of a campaign",
        Not(clause=RedeemedCoupon(campaign="spring", window_days=7)),
        (redeemed(spring=8), True),
        (redeemed(spring=6), False),
        (NOBODY, True),
    ),
]

COMBINED_CASES = [
    case(
        "in a segment",
        InSegment(key="buyers"),
        (on({10: placed(1)}), True),
        (NOBODY, False),
    ),
    case(
        "in a segment that uses a segment",
        InSegment(key="engaged"),
        (on({10: placed(1)}), True),
        (on({3: seen(email_clicked=1)}), True),
        (on({30: seen(email_clicked=1)}), False),
    ),
    case(
        "not in a segment",
        Not(clause=InSegment(key="engaged")),
        (NOBODY, True),
        (on({3: seen(email_clicked=1)}), False),
    ),
    case(
        "the example of the design",
        And(
            clauses=(
                metric("orders", ">=", 3, last=365),
                metric("net_spend", ">", 50_000, last=365),
                extension("newsletter"),
                Not(clause=extension("employee")),
                consent("email_marketing"),
                TraitIn(path=("country",), values=("DE", "AT", "CH")),
            )
        ),
        *[
            (
                p(
                    traits={"country": country},
                    consents={"email_marketing": True},
                    extensions=dict.fromkeys(grants),
                    aggregates=history(
                        {0: placed(1, 20_000), 100: placed(1, 20_000), last: placed(1, 20_000)}
                    ),
                ),
                expected,
            )
            for country, grants, last, expected in [
                ("DE", ("newsletter",), 364, True),
                ("DE", ("newsletter", "employee"), 364, False),
                ("FR", ("newsletter",), 364, False),
                ("AT", ("newsletter",), 365, False),
                ("CH", (), 364, False),
            ]
        ],
    ),
    case(
        "or with a branch no index can narrow",
        Or(clauses=(metric("orders", ">=", 1, last=30), trait("age", ">", 60))),
        (traits(age=70), True),
        (on({5: placed(1)}), True),
        (traits(age=60), False),
        (NOBODY, False),
    ),
    case(
        "not of a window",
        Not(clause=metric("orders", ">=", 1, last=30)),
        (NOBODY, True),
        (on({5: placed(1)}), False),
        (on({30: placed(1)}), True),
    ),
    case(
        "or of branches an index can narrow",
        Or(clauses=(HasIdentity(identity_type=IdentityType.EMAIL), consent("ads"))),
        (p(identities=(IdentityType.EMAIL,)), True),
        (p(consents={"ads": True}), True),
        (p(consents={"ads": False}), False),
    ),
    case(
        "and inside or inside not",
        Not(clause=Or(clauses=(And(clauses=(trait("age", ">=", 18), consent("ads"))), extension("vip")))),
        (p(traits={"age": 30}, consents={"ads": True}), False),
        (p(traits={"age": 30}, consents={"ads": False}), True),
        (p(traits={"age": 17}, consents={"ads": True}), True),
        (p(extensions={"vip": None}), False),
        (NOBODY, True),
    ),
]

CASES: list[SegmentCase] = [*TRAIT_CASES, *METRIC_CASES, *PRESENCE_CASES, *COMBINED_CASES]

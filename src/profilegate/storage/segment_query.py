"""The segment rule compiler: a MongoDB query for exactly the profiles a rule holds for.

The second interpreter of ``domain.segment_rules`` (the first is ``segment_predicate``; one
conformance table and a property test hold them to the same answers). A rule becomes

- an aggregation expression (``$expr``) over the stored profile document that is true exactly
  when the predicate is, written with explicit type tests (``$type``, ``$isNumber``) since
  comparisons across BSON types follow BSON order, not the rule language; every absent value
  is made ``null`` first (the embedded store reports ``$type`` of a computed missing value
  wrongly), and ``not`` is a ``$cond`` (the embedded store has no ``$not`` expression);
- preceded by necessary conditions in the query language that an index can serve, so a window
  that no index can test scans only the profiles that could pass (``PREFILTER_INDEXES``).

The necessary conditions rest on invariants of stored aggregates: a day bucket exists only
for a day with an event (so ``aggregates.lastSeen`` reaches that day), and lifetime counts
and sums include every bucket's (buckets hold only the profile's own events, pruned or not).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from profilegate.domain.aggregates import DayBucket
from profilegate.domain.events import EventType
from profilegate.domain.segment_predicate import COMPARE, segment_rule, window_start
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
from profilegate.storage.aggregates import day_document
from profilegate.storage.documents import Document

MS_PER_DAY = 86_400_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# Single-field indexes on profiles that the necessary conditions below can use.
PREFILTER_INDEXES: list[tuple[str, int]] = [
    ("aggregates.orders", 1),
    ("aggregates.gross", 1),
    ("aggregates.lastSeen", 1),
    ("aggregates.lastOrderAt", 1),
]

_OPERATORS = {
    Comparison.EQ: "$eq",
    Comparison.NE: "$ne",
    Comparison.LT: "$lt",
    Comparison.LE: "$lte",
    Comparison.GT: "$gt",
    Comparison.GE: "$gte",
}
_LIFETIME_FIELDS = {
    Metric.ORDERS: "aggregates.orders",
    Metric.GROSS_SPEND: "aggregates.gross",
    Metric.NET_SPEND: "aggregates.gross",  # net <= gross: returns and cancellations are >= 0
}


@dataclass(frozen=True)
class _Scope:
    now: datetime  # in UTC
    segments: Mapping[str, Rule]

    @property
    def today(self) -> date:
        return self.now.date()


def segment_filter(rule: Rule, now: datetime, segments: Mapping[str, Rule]) -> Document:
    """A query document (for ``find`` or ``$match``) matching the profiles ``rule`` holds for."""
    scope = _Scope(now.astimezone(UTC), segments)
    exact = {"$expr": _expression(rule, scope)}
    necessary = _necessary(rule, scope)
    return {"$and": [*necessary, exact]} if necessary else exact


# The exact test: an aggregation expression.


def _expression(rule: Rule, scope: _Scope) -> Document:
    match rule:
        case And(clauses=clauses):
            return {"$and": [_expression(clause, scope) for clause in clauses]}
        case Or(clauses=clauses):
            return {"$or": [_expression(clause, scope) for clause in clauses]}
        case Not(clause=clause):
            return {"$cond": [_expression(clause, scope), False, True]}
        case InSegment(key=key):
            return _expression(segment_rule(scope.segments, key), scope)
        case TraitTest(path=path, op=op, value=value):
            return _with_trait(path, _compared("$$t", op, value))
        case TraitIn(path=path, values=values):
            return _with_trait(path, _one_of("$$t", values))
        case TraitContains(path=path, value=value):
            return _with_trait(path, _contains("$$t", value))
        case TraitExists(path=path):
            return _with_trait(path, {"$ne": ["$$t", None]})
        case MetricTest():
            return _metric_holds(rule, scope)
        case HasExtension(name=name):
            return _let("g", _lookup("$extensions", (name,)), _active_grant("$$g", scope.now))
        case HasConsent(purpose=purpose):
            return {"$eq": [_lookup("$consents", (purpose, "granted")), True]}
        case HasIdentity(identity_type=kind):
            return _any_element("$identities", {"$eq": ["$$e.type", kind.value]})
        case UsedChannel(channel=channel):
            return {"$gt": [{"$ifNull": [f"$aggregates.channels.{channel.value}", 0]}, 0]}
        case RedeemedCoupon(campaign=campaign, window_days=days):
            return _redeemed_since(campaign, window_start(scope.today, days).isoformat())


def _redeemed_since(campaign: str, first: str) -> Document:
    """A ``[campaign, latest day]`` pair of ``aggregates.couponCampaigns`` names the campaign
    and a day on or after ``first``."""
    pair = {
        "$and": [
            {"$eq": [{"$arrayElemAt": ["$$e", 0]}, _literal(campaign)]},
            {"$gte": [{"$arrayElemAt": ["$$e", 1]}, first]},
        ]
    }
    return _any_element("$aggregates.couponCampaigns", pair)


def _let(name: str, value: Any, expression: Any) -> Document:
    return {"$let": {"vars": {name: value}, "in": expression}}


def _literal(value: Any) -> Document:
    """A constant, never read as a field path or operator (``"$x"`` stays a string)."""
    return {"$literal": value}


def _lookup(root: Any, path: Sequence[str]) -> Document:
    """``root[path[0]][path[1]]...`` through objects only (never through arrays); null if absent."""
    found: Document = {"$ifNull": [root, None]}
    for depth, key in enumerate(path):
        here = f"$$p{depth}"
        step = {
            "$cond": [
                {"$eq": [{"$type": here}, "object"]},
                {"$ifNull": [{"$getField": {"field": _literal(key), "input": here}}, None]},
                None,
            ]
        }
        found = _let(f"p{depth}", found, step)
    return found


def _with_trait(path: Sequence[str], test: Document) -> Document:
    return _let("t", _lookup("$traits", path), test)


def _type_name(value: Scalar) -> str:
    """The rule-language type of a value, named as ``$type`` names it (numbers aside)."""
    return "bool" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"


def _is_kind_of(found: str, value: Scalar) -> Document:
    """``found`` has the type of ``value``: a number (never a boolean), a string or a boolean."""
    name = _type_name(value)
    return {"$isNumber": found} if name == "number" else {"$eq": [{"$type": found}, name]}


def _compared(found: str, op: Comparison, value: Scalar) -> Document:
    if isinstance(value, bool) and op not in (Comparison.EQ, Comparison.NE):
        return _literal(False)
    return {"$and": [_is_kind_of(found, value), {_OPERATORS[op]: [found, _literal(value)]}]}


def _one_of(found: str, values: Sequence[Scalar]) -> Document:
    """Type-strict ``found in values``: one ``$in`` per type among the values."""
    by_type: dict[str, list[Scalar]] = {}
    for value in values:
        by_type.setdefault(_type_name(value), []).append(value)
    return {
        "$or": [
            {"$and": [_is_kind_of(found, members[0]), {"$in": [found, _literal(members)]}]}
            for members in by_type.values()
        ]
    }


def _contains(found: str, value: Scalar) -> Document:
    in_string: Document = _literal(False)
    if isinstance(value, str):
        in_string = {
            "$cond": [
                {"$eq": [{"$type": found}, "string"]},
                {"$gte": [{"$indexOfCP": [found, _literal(value)]}, 0]},
                False,
            ]
        }
    in_list = _any_element(found, _compared("$$e", Comparison.EQ, value))
    return {"$cond": [{"$isArray": found}, in_list, in_string]}


def _any_element(array: str, test: Document) -> Document:
    """Some element ``$$e`` of ``array`` passes ``test``; false when it is no array."""
    elements = {"$cond": [{"$isArray": array}, array, []]}
    return {"$anyElementTrue": [{"$map": {"input": elements, "as": "e", "in": test}}]}


def _active_grant(grant: str, now: datetime) -> Document:
    expiry = {"$ifNull": [f"{grant}.expiresAt", None]}
    return {
        "$and": [
            {"$eq": [{"$type": grant}, "object"]},
            {"$or": [{"$eq": [expiry, None]}, {"$gt": [expiry, now]}]},
        ]
    }


def _metric_holds(test: MetricTest, scope: _Scope) -> Document:
    """The metric is present and compares; absent values (null here) fail every operator."""
    value = _lifetime(test, scope) if test.window_days is None else _window_sum(test, scope)
    compared = {_OPERATORS[test.op]: ["$$m", _literal(test.value)]}
    return _let("m", value, {"$and": [{"$ne": ["$$m", None]}, compared]})


def _window_sum(test: MetricTest, scope: _Scope) -> Document:
    assert test.window_days is not None, "only for windowed tests"
    first = window_start(scope.today, test.window_days).isoformat()
    inside = {"$and": [{"$gte": ["$$d.k", first]}, {"$lte": ["$$d.k", scope.today.isoformat()]}]}
    days = {"$objectToArray": {"$ifNull": ["$daily", {}]}}
    buckets = {"$filter": {"input": days, "as": "d", "cond": inside}}
    return {"$sum": {"$map": {"input": buckets, "as": "d", "in": _bucket_amount(test, "$$d.v")}}}


def _bucket_amount(test: MetricTest, bucket: str) -> Document:
    def stored(key: str) -> Document:
        return {"$ifNull": [f"{bucket}.{key}", 0]}

    match test.metric:
        case Metric.ORDERS:
            return stored("o")
        case Metric.GROSS_SPEND:
            return stored("g")
        case Metric.NET_SPEND:
            return {"$subtract": [stored("g"), {"$add": [stored("k"), stored("x")]}]}
        case _:
            return stored(f"c.{_day_code(_counted(test))}")


def _stored(key: str) -> Document:
    """A lifetime figure of ``aggregates``; 0 where the document has none."""
    return {"$ifNull": [f"$aggregates.{key}", 0]}


def _lifetime(test: MetricTest, scope: _Scope) -> Document:
    match test.metric:
        case Metric.ORDERS:
            return _stored("orders")
        case Metric.GROSS_SPEND:
            return _stored("gross")
        case Metric.NET_SPEND:
            return _lifetime_net()
        case Metric.RETURNS | Metric.EVENTS:
            return _stored(f"counts.{_counted(test).value}")
        case Metric.DAYS_SINCE_LAST_ORDER:
            return _days_since("$aggregates.lastOrderAt", scope.today)
        case Metric.RETURN_RATE:
            rate = {"$divide": [_stored("returnedOrders"), _stored("orders")]}
            return {"$cond": [{"$gt": [_stored("orders"), 0]}, rate, 0.0]}
        case Metric.AVERAGE_ORDER_VALUE:
            return _average_order_value()


def _lifetime_net() -> Document:
    return {"$subtract": [_stored("gross"), {"$add": [_stored("returned"), _stored("cancelled")]}]}


def _average_order_value() -> Document:
    """``round(net / kept orders)``, half to even as Python rounds; null without kept orders."""
    kept = {"$subtract": [_stored("orders"), _stored("cancelledOrders")]}
    average = {"$round": [{"$divide": [_lifetime_net(), "$$kept"]}, 0]}
    return _let("kept", kept, {"$cond": [{"$gt": ["$$kept", 0]}, average, None]})


def _days_since(moment: str, today: date) -> Document:
    """UTC days from ``moment``'s day to ``today``; null when ``moment`` is no date."""
    day = {"$floor": {"$divide": [{"$toLong": moment}, MS_PER_DAY]}}
    days = {"$subtract": [today.toordinal() - EPOCH_ORDINAL, day]}
    return {"$cond": [{"$eq": [{"$type": moment}, "date"]}, days, None]}


def _counted(test: MetricTest) -> EventType:
    if test.metric is Metric.RETURNS:
        return EventType.ORDER_RETURNED
    assert test.event_type is not None, "MetricTest ensures an event type for events"
    return test.event_type


def _day_code(kind: EventType) -> str:
    """The short code a day bucket stores ``kind``'s count under."""
    (code,) = day_document(DayBucket(counts={kind.value: 1}))["c"]
    return str(code)


# Necessary conditions: query-language tests an index can serve, each implied by the rule.


def _necessary(rule: Rule, scope: _Scope) -> list[Document]:
    """Conditions every profile the rule holds for meets (all of them); empty: none known."""
    match rule:
        case And(clauses=clauses):
            return [condition for clause in clauses for condition in _necessary(clause, scope)]
        case Or(clauses=clauses):
            alternatives = [_necessary(clause, scope) for clause in clauses]
            if not all(alternatives):
                return []  # some branch may hold with no known condition
            return [{"$or": [_all_of(conditions) for conditions in alternatives]}]
        case Not():
            return []
        case InSegment(key=key):
            return _necessary(segment_rule(scope.segments, key), scope)
        case MetricTest():
            return _metric_necessary(rule, scope)
        case HasExtension(name=name) if _plain_field(name):
            return [{f"extensions.{name}": {"$exists": True}}]
        case HasConsent(purpose=purpose) if _plain_field(purpose):
            return [{f"consents.{purpose}.granted": True}]
        case HasIdentity(identity_type=kind):
            return [{"identities.type": kind.value}]
        case UsedChannel(channel=channel):
            return [{f"aggregates.channels.{channel.value}": {"$gt": 0}}]
        case TraitTest(path=path, op=Comparison.EQ, value=value) if _plain_path(path):
            # Equality in the query language also matches a list holding the value and 5 with
            # 5.0: a superset of the type-strict test, which the exact expression then makes.
            return [{_trait_field(path): value}]
        case TraitIn(path=path, values=values) if _plain_path(path):
            return [{_trait_field(path): {"$in": list(values)}}]
        case TraitExists(path=path) if _plain_path(path):
            # Not ``$ne: null`` as well: on a list that holds a null it fails, yet the list exists.
            return [{_trait_field(path): {"$exists": True}}]
        case _:
            return []


def _plain_path(path: Sequence[str]) -> bool:
    return all(_plain_field(step) and not step.isdigit() for step in path)


def _trait_field(path: Sequence[str]) -> str:
    return "traits." + ".".join(path)


def _all_of(conditions: list[Document]) -> Document:
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def _plain_field(name: str) -> bool:
    """A name usable as one step of a dotted path."""
    return bool(name) and "." not in name and not name.startswith("$") and "\x00" not in name


def _metric_necessary(test: MetricTest, scope: _Scope) -> list[Document]:
    return [
        *_lifetime_bound(test),
        *_window_seen(test, scope.today),
        *_needs_an_order(test),
        *_last_order_range(test, scope.today),
    ]


def _lifetime_bound(test: MetricTest) -> list[Document]:
    """From ``metric >= v > 0`` (or ``> v >= 0``, ``= v > 0``): the lifetime figure, which bounds
    the metric from above in every window, reaches ``v``. A missing field means 0 and fails too."""
    field = _LIFETIME_FIELDS.get(test.metric)
    if test.metric in (Metric.RETURNS, Metric.EVENTS):
        field = f"aggregates.counts.{_counted(test).value}"
    if field is None:
        return []
    if test.op in (Comparison.GE, Comparison.EQ) and test.value > 0:
        return [{field: {"$gte": test.value}}]
    if test.op is Comparison.GT and test.value >= 0:
        return [{field: {"$gt": test.value}}]
    return []


def _window_seen(test: MetricTest, today: date) -> list[Document]:
    """A window test that fails for 0 needs a bucket in the window (a sum over none is 0), and a
    bucket means an event on its day: the profile was last seen in the window or later."""
    if test.window_days is None or COMPARE[test.op](0, test.value):
        return []
    first = window_start(today, test.window_days)
    if first == date.min:
        return []  # the window reaches back before every event
    return [{"aggregates.lastSeen": {"$gte": _midnight(first)}}]


def _needs_an_order(test: MetricTest) -> list[Document]:
    """The average order value is absent without orders, and the return rate is 0 then."""
    needs = test.metric is Metric.AVERAGE_ORDER_VALUE or (
        test.metric is Metric.RETURN_RATE and not COMPARE[test.op](0.0, test.value)
    )
    return [{"aggregates.orders": {"$gte": 1}}] if needs else []


def _last_order_range(test: MetricTest, today: date) -> list[Document]:
    """``days_since_last_order op n`` as a range of ``lastOrderAt`` (n is a whole number)."""
    if test.metric is not Metric.DAYS_SINCE_LAST_ORDER or test.op is Comparison.NE:
        return []
    days = int(test.value)
    fewest = {Comparison.GE: days, Comparison.GT: days + 1, Comparison.EQ: days}.get(test.op)
    most = {Comparison.LE: days, Comparison.LT: days - 1, Comparison.EQ: days}.get(test.op)
    bounds: dict[str, datetime] = {}
    if fewest is not None and (before := _days_back(today, fewest - 1)) is not None:
        bounds["$lt"] = before  # at least ``fewest`` days: before the day after that many back
    if most is not None and (since := _days_back(today, most)) is not None:
        bounds["$gte"] = since  # at most ``most`` days: that many days back or later
    return [{"aggregates.lastOrderAt": bounds}] if bounds else []


def _days_back(today: date, days: int) -> datetime | None:
    """Midnight (UTC) ``days`` days before ``today``; None beyond the calendar (no bound then)."""
    ordinal = today.toordinal() - days
    if not date.min.toordinal() <= ordinal <= date.max.toordinal():
        return None
    return _midnight(date.fromordinal(ordinal))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)

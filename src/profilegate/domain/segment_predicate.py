"""The segment rule predicate: whether a rule holds for one profile at ``now``, and why.

The pure interpreter of the syntax tree in ``segment_rules``, whose docstrings give every
node's meaning; ``storage.segment_query`` is the other interpreter, and one conformance table
and a property test hold the two to the same answers. Values in (rule, profile, ``now``, the
segments an ``in_segment`` may name), a boolean or an :class:`Explanation` out; no IO, no clock.
"""

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.consents import Consent
from profilegate.domain.events import EventType
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_parser import render_rule
from profilegate.domain.segment_rules import (
    MONEY,
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
    TraitContains,
    TraitExists,
    TraitIn,
    TraitTest,
    UsedChannel,
)

type Leaf = (
    TraitTest
    | TraitIn
    | TraitContains
    | TraitExists
    | MetricTest
    | HasExtension
    | HasConsent
    | HasIdentity
    | UsedChannel
    | RedeemedCoupon
)

COMPARE: dict[Comparison, Callable[[Any, Any], bool]] = {
    Comparison.EQ: operator.eq,
    Comparison.NE: operator.ne,
    Comparison.LT: operator.lt,
    Comparison.LE: operator.le,
    Comparison.GT: operator.gt,
    Comparison.GE: operator.ge,
}


@dataclass(frozen=True)
class Explanation:
    """One clause of a rule: its text, whether it held, what the profile had, its sub-clauses.

    ``seen`` is set for leaves the profile had a value for (``"4"`` orders, ``"512.30"`` of
    money, ``'"DE"'`` for a trait); ``parts`` are the clauses of ``and``/``or``/``not`` and,
    for ``in_segment``, the named segment's rule.
    """

    clause: str
    held: bool
    seen: str | None
    parts: tuple["Explanation", ...] = ()


@dataclass(frozen=True)
class _Scope:
    profile: Profile
    now: datetime  # in UTC
    segments: Mapping[str, Rule]


def holds(rule: Rule, profile: Profile, now: datetime, segments: Mapping[str, Rule]) -> bool:
    """Whether ``rule`` holds for ``profile`` at ``now``; ``in_segment`` reads ``segments``."""
    return _holds(rule, _Scope(profile, now.astimezone(UTC), segments))


def explain(
    rule: Rule,
    profile: Profile,
    now: datetime,
    segments: Mapping[str, Rule],
    *,
    currencies: Currencies,
) -> Explanation:
    """Every clause of ``rule`` evaluated (none skipped), money written in ``currencies.base``."""
    return _explain(rule, _Scope(profile, now.astimezone(UTC), segments), currencies)


def segment_rule(segments: Mapping[str, Rule], key: str) -> Rule:
    """The rule of the segment an ``in_segment`` names; unknown keys are a programming error."""
    try:
        return segments[key]
    except KeyError:
        raise KeyError(
            f"in_segment({key!r}) names no known segment (stored rules are validated on save)"
        ) from None


def window_start(today: date, days: int) -> date:
    """The first of the ``days`` UTC days ending ``today`` (the first day there is, at most)."""
    return date.fromordinal(max(today.toordinal() - (days - 1), date.min.toordinal()))


def trait_value(traits: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``traits[path[0]][path[1]]...``; None when the path leads nowhere."""
    found: Any = traits
    for key in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(key)
    return found


def compare_scalars(found: object, op: Comparison, expected: object) -> bool:
    """Type-strict: numbers with numbers, strings with strings, booleans only by = and !=."""
    kind = _scalar_kind(found)
    if kind is None or kind != _scalar_kind(expected):
        return False
    if kind == "bool" and op not in (Comparison.EQ, Comparison.NE):
        return False
    return COMPARE[op](found, expected)


def contains(found: object, expected: object) -> bool:
    """A list with an element equal to ``expected``, or a string holding it as a substring."""
    if isinstance(found, list | tuple):
        return any(compare_scalars(element, Comparison.EQ, expected) for element in found)
    return isinstance(found, str) and isinstance(expected, str) and expected in found


def measure(test: MetricTest, aggregates: Aggregates, now: datetime) -> int | float | None:
    """The metric's value (None where it is absent), over the window or the lifetime."""
    if test.window_days is None:
        return _lifetime(test, aggregates, now.astimezone(UTC).date())
    buckets = _window(aggregates, now.astimezone(UTC).date(), test.window_days)
    return sum(_bucket_amount(test, bucket) for bucket in buckets)


def _scalar_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _window(aggregates: Aggregates, today: date, days: int) -> Iterable[DayBucket]:
    first, last = window_start(today, days).isoformat(), today.isoformat()
    return (bucket for day, bucket in aggregates.daily.items() if first <= day <= last)


def _bucket_amount(test: MetricTest, bucket: DayBucket) -> int:
    match test.metric:
        case Metric.ORDERS:
            return bucket.orders
        case Metric.NET_SPEND:
            return bucket.net
        case Metric.GROSS_SPEND:
            return bucket.gross
        case _:
            return bucket.counts.get(_counted(test), 0)


def _lifetime(test: MetricTest, aggregates: Aggregates, today: date) -> int | float | None:
    match test.metric:
        case Metric.ORDERS:
            return aggregates.orders
        case Metric.NET_SPEND:
            return aggregates.net
        case Metric.GROSS_SPEND:
            return aggregates.gross
        case Metric.RETURNS | Metric.EVENTS:
            return aggregates.counts.get(_counted(test), 0)
        case Metric.DAYS_SINCE_LAST_ORDER:
            last = aggregates.last_order_at
            return None if last is None else (today - last.astimezone(UTC).date()).days
        case Metric.RETURN_RATE:
            return aggregates.return_rate()
        case Metric.AVERAGE_ORDER_VALUE:
            return aggregates.average_order_value()


def _counted(test: MetricTest) -> str:
    """The event type a count metric counts."""
    if test.metric is Metric.RETURNS:
        return EventType.ORDER_RETURNED.value
    assert test.event_type is not None, "MetricTest ensures an event type for events"
    return test.event_type.value


def _holds(rule: Rule, scope: _Scope) -> bool:
    match rule:
        case And(clauses=clauses):
            return all(_holds(clause, scope) for clause in clauses)
        case Or(clauses=clauses):
            return any(_holds(clause, scope) for clause in clauses)
        case Not(clause=clause):
            return not _holds(clause, scope)
        case InSegment(key=key):
            return _holds(segment_rule(scope.segments, key), scope)
        case _:
            return _observe(rule, scope)[0]


def _observe(leaf: Leaf, scope: _Scope) -> tuple[bool, object]:
    """Whether a leaf holds, and what of the profile it read."""
    profile = scope.profile
    match leaf:
        case TraitTest(path=path, op=op, value=value):
            found = trait_value(profile.traits, path)
            return compare_scalars(found, op, value), found
        case TraitIn(path=path, values=values):
            found = trait_value(profile.traits, path)
            return any(compare_scalars(found, Comparison.EQ, v) for v in values), found
        case TraitContains(path=path, value=value):
            found = trait_value(profile.traits, path)
            return contains(found, value), found
        case TraitExists(path=path):
            found = trait_value(profile.traits, path)
            return found is not None, found
        case MetricTest(op=op, value=value):
            measured = measure(leaf, profile.aggregates, scope.now)
            return measured is not None and COMPARE[op](measured, value), measured
        case HasExtension(name=name):
            grant = profile.extensions.get(name)
            return grant is not None and grant.active(scope.now), grant
        case HasConsent(purpose=purpose):
            consent = profile.consents.get(purpose)
            return consent is not None and consent.granted, consent
        case HasIdentity(identity_type=kind):
            count = sum(1 for identity in profile.identities if identity.type is kind)
            return count > 0, count
        case UsedChannel(channel=channel):
            used = profile.aggregates.channels.get(channel.value, 0)
            return used > 0, used
        case RedeemedCoupon(campaign=campaign, window_days=days):
            latest = profile.aggregates.coupon_campaigns.get(campaign)
            first = window_start(scope.now.astimezone(UTC).date(), days).isoformat()
            return latest is not None and latest >= first, latest


def _explain(rule: Rule, scope: _Scope, currencies: Currencies) -> Explanation:
    match rule:
        case And(clauses=clauses) | Or(clauses=clauses):
            parts = tuple(_explain(clause, scope, currencies) for clause in clauses)
            held = all(p.held for p in parts) if isinstance(rule, And) else any(p.held for p in parts)
            return Explanation(render_rule(rule, currencies), held, None, parts)
        case Not(clause=clause):
            part = _explain(clause, scope, currencies)
            return Explanation(render_rule(rule, currencies), not part.held, None, (part,))
        case InSegment(key=key):
            part = _explain(segment_rule(scope.segments, key), scope, currencies)
            return Explanation(render_rule(rule, currencies), part.held, None, (part,))
        case _:
            held, found = _observe(rule, scope)
            return Explanation(render_rule(rule, currencies), held, _show(rule, found, scope.now, currencies))


def _show(leaf: Leaf, found: object, now: datetime, currencies: Currencies) -> str | None:
    """What the profile had, as text; None where it had nothing."""
    if found is None:
        return None
    match leaf:
        case MetricTest(metric=metric):
            return _show_metric(metric, found, currencies)
        case HasExtension() if isinstance(found, ExtensionGrant):
            return _show_grant(found, now)
        case HasConsent() if isinstance(found, Consent):
            return "granted" if found.granted else "denied"
        case HasIdentity() | UsedChannel() | RedeemedCoupon():
            return str(found)
        case _:
            return json.dumps(found, ensure_ascii=False, default=str)


def _show_metric(metric: Metric, found: object, currencies: Currencies) -> str:
    if metric in MONEY and isinstance(found, int):
        return currencies.format(found)
    if metric is Metric.RETURN_RATE and isinstance(found, float):
        return f"{found:.4g}"
    return str(found)


def _show_grant(grant: ExtensionGrant, now: datetime) -> str:
    if grant.expires_at is None:
        return "set, no expiry"
    expiry = grant.expires_at.astimezone(UTC).isoformat()
    return f"set, expires {expiry}" if grant.active(now) else f"expired {expiry}"

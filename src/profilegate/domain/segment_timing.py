"""When a rule's answer for a profile can next change with time alone.

A stored membership is valid until the profile is written again or this moment passes,
whichever is first. Windows, ``days_since_last_order`` and ``redeemed_coupon`` are counted
in UTC days, so they can change at the next UTC midnight; ``has_extension`` changes when a
grant it reads expires. Everything else (traits, lifetime counts, consents, identities, channels) changes
only with a write of the profile. The answer is never later than the true moment: a
membership checked too early is merely checked again.
"""

from datetime import UTC, datetime, time, timedelta

from profilegate.domain.profiles import Profile
from profilegate.domain.segment_predicate import segment_rule
from profilegate.domain.segment_rules import (
    And,
    HasExtension,
    InSegment,
    Metric,
    MetricTest,
    Not,
    Or,
    RedeemedCoupon,
    Rule,
)


def next_change(rule: Rule, profile: Profile, now: datetime, segments: dict[str, Rule]) -> datetime | None:
    """The earliest moment after ``now`` at which the rule may answer otherwise for ``profile``
    without a write of it; None when only a write can change the answer."""
    moments = [m for m in _moments(rule, profile, now, segments) if m is not None]
    return min(moments, default=None)


def _moments(rule: Rule, profile: Profile, now: datetime, segments: dict[str, Rule]) -> list[datetime | None]:
    match rule:
        case And(clauses=clauses) | Or(clauses=clauses):
            return [moment for clause in clauses for moment in _moments(clause, profile, now, segments)]
        case Not(clause=clause):
            return _moments(clause, profile, now, segments)
        case InSegment(key=key):
            return _moments(segment_rule(segments, key), profile, now, segments)
        case MetricTest():
            return [_next_midnight(now) if _day_based(rule) else None]
        case RedeemedCoupon():
            return [_next_midnight(now)]
        case HasExtension(name=name):
            grant = profile.extensions.get(name)
            expires = None if grant is None else grant.expires_at
            return [expires if expires is not None and expires > now else None]
        case _:
            return [None]


def _day_based(test: MetricTest) -> bool:
    return test.window_days is not None or test.metric is Metric.DAYS_SINCE_LAST_ORDER


def _next_midnight(now: datetime) -> datetime:
    today = now.astimezone(UTC).date()
    return datetime.combine(today + timedelta(days=1), time(), tzinfo=UTC)


def time_dependent(rule: Rule, segments: dict[str, Rule]) -> bool:
    """Whether the rule's answer for some profile can change by time alone."""
    match rule:
        case And(clauses=clauses) | Or(clauses=clauses):
            return any(time_dependent(clause, segments) for clause in clauses)
        case Not(clause=clause):
            return time_dependent(clause, segments)
        case InSegment(key=key):
            return time_dependent(segment_rule(segments, key), segments)
        case MetricTest():
            return _day_based(rule)
        case HasExtension() | RedeemedCoupon():
            return True
        case _:
            return False

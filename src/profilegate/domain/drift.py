"""Where state kept on write differs from what the event log gives: pure comparisons.

``rebuild-aggregates --check`` and ``aggregateCheck`` hold each profile's aggregates, its
checkout payloads and its segment memberships, and each shop day rollup, against what the
log gives (the fold of its events, the rollups of its events) and list each difference as a
:class:`Mismatch`: the metric and both values, as text (amounts in minor units).

What time alone changes is not a difference: day buckets and order entries older than the
retention cutoff (pruned at the profile's next write), a membership record whose ``until`` has
passed (the refresh checks it again) and a membership a profile gained by time alone since it
was written (the refresh records it). Nor is the order of the ids in the replay guard: tracking
keeps them in the order the events arrived, the fold in event-time order. Which ids a full
guard holds does count: the fold keeps the newest by event time, so a profile that took late
events past the guard's size differs until it is rebuilt.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from profilegate.domain.aggregates import Aggregates
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.shop_days import DayRollup

ABSENT = "-"
NEVER = "9999-12-31"  # the day of what is never pruned by day
MEMBER = "member"
NOT_MEMBER = "not a member"
# The fields of a day rollup that hold what the day's events add, in the order listed.
ROLLUP_FIELDS = (
    "visitors",
    "buyers",
    "orders",
    "returns",
    "times",
    "product_views",
    "order_marks",
    "touches",
    "returners",
    "return_orders",
    "cancellations",
)


@dataclass(frozen=True)
class Mismatch:
    metric: str
    live: str
    logged: str


def aggregate_mismatches(live: Aggregates, logged: Aggregates, cutoff: str) -> list[Mismatch]:
    """Every metric of ``live`` that differs from ``logged`` (a per-day or per-key figure as
    its own metric, ``daily.2026-11-20``), leaving out what lies before the ``cutoff`` day."""
    found: list[Mismatch] = []
    for name in Aggregates.model_fields:
        if name == "recent_event_ids":
            found.extend(_guard_mismatch(live.recent_event_ids, logged.recent_event_ids))
            continue
        ours, theirs = getattr(live, name), getattr(logged, name)
        if isinstance(ours, dict):
            found.extend(_keyed_mismatches(_camel(name), _kept(ours, cutoff), _kept(theirs, cutoff)))
        elif ours != theirs:
            found.append(Mismatch(_camel(name), render(ours), render(theirs)))
    return found


def _guard_mismatch(live: tuple[str, ...], logged: tuple[str, ...]) -> list[Mismatch]:
    """The replay guard holds the same ids as the fold's, in any order (tracking keeps them in
    the order the events arrived, the fold in event-time order)."""
    if set(live) == set(logged):
        return []
    return [Mismatch("recentEventIds", _ids(live, logged, "the log"), _ids(logged, live, "live"))]


def _ids(these: tuple[str, ...], others: tuple[str, ...], other_side: str) -> str:
    return f"{len(these)} ids ({len(set(these) - set(others))} not {_in(other_side)})"


def _in(side: str) -> str:
    return "live" if side == "live" else f"in {side}"


def _kept(values: Mapping[str, Any], cutoff: str) -> dict[str, Any]:
    """Day buckets and order entries of the retention window (others are pruned on write)."""
    return {key: value for key, value in values.items() if _day_of(key, value) >= cutoff}


def _day_of(key: str, value: object) -> str:
    """A day bucket's day (its key), an order entry's day; else (or without one) never pruned."""
    if _looks_like_day(key):
        return key
    day = getattr(value, "day", None)
    return day if isinstance(day, str) else NEVER


def _looks_like_day(key: str) -> bool:
    return len(key) == 10 and key[4] == "-" and key[7] == "-" and key.replace("-", "").isdigit()


def _keyed_mismatches(name: str, live: Mapping[str, Any], logged: Mapping[str, Any]) -> list[Mismatch]:
    return [
        Mismatch(f"{name}.{key}", render(live.get(key)), render(logged.get(key)))
        for key in sorted(live.keys() | logged.keys())
        if live.get(key) != logged.get(key)
    ]


def checkout_mismatches(
    where: str,
    carried: tuple[Mapping[int, int], Mapping[str, ExtensionGrant], str | None],
    expected: tuple[Mapping[int, int], Mapping[str, ExtensionGrant], str | None],
    first_day: int,
) -> list[Mismatch]:
    """A checkout payload (net spend by day number, extensions, merge pointer) against what it
    should carry; ``where``: which copy (``checkout``, ``identityKey.EMAIL``, ...)."""
    spend, extensions, merged_into = carried
    want_spend, want_extensions, want_merged = expected
    found: list[Mismatch] = []
    ours = {day: net for day, net in spend.items() if day >= first_day}
    theirs = {day: net for day, net in want_spend.items() if day >= first_day}
    if ours != theirs:
        found.append(Mismatch(f"{where}.spend", _spend(ours, theirs), _spend(theirs, ours)))
    if dict(extensions) != dict(want_extensions):
        found.append(Mismatch(f"{where}.extensions", _names(extensions), _names(want_extensions)))
    if merged_into != want_merged:
        found.append(Mismatch(f"{where}.mergedInto", render(merged_into), render(want_merged)))
    return found


def _spend(these: Mapping[int, int], others: Mapping[int, int]) -> str:
    differing = sum(1 for day in these.keys() | others.keys() if these.get(day) != others.get(day))
    return f"{len(these)} days, net {sum(these.values())} ({differing} days differ)"


def _names(extensions: Mapping[str, ExtensionGrant]) -> str:
    return ", ".join(sorted(extensions)) or ABSENT


@dataclass(frozen=True)
class Memberships:
    """What one profile's memberships are compared with, per segment whose records are complete:
    ``recorded`` (key -> ``until``), ``now`` (the segments it is in now, by the log's
    aggregates), ``at_write`` (those it was in at its last write), ``by_time`` (segments whose
    answer time alone can change)."""

    recorded: Mapping[str, datetime | None]
    now: Collection[str]
    at_write: Collection[str]
    by_time: Collection[str]


def membership_mismatches(segments: Collection[str], seen: Memberships, now: datetime) -> list[Mismatch]:
    found: list[Mismatch] = []
    for key in sorted(segments):
        recorded, member = key in seen.recorded, key in seen.now
        if recorded and not member:
            until = seen.recorded[key]
            if until is None or until > now:
                found.append(Mismatch(f"segment.{key}", MEMBER, NOT_MEMBER))
        elif member and not recorded and (key not in seen.by_time or key in seen.at_write):
            found.append(Mismatch(f"segment.{key}", NOT_MEMBER, MEMBER))  # not entered by time alone
    return found


def rollup_mismatches(live: DayRollup | None, logged: DayRollup | None) -> list[Mismatch]:
    """A shop day rollup (one day, all channels or one) against the rollup of the logged events."""
    found: list[Mismatch] = []
    for name in ROLLUP_FIELDS:
        ours = {} if live is None else getattr(live, name)
        theirs = {} if logged is None else getattr(logged, name)
        if ours != theirs:
            found.append(
                Mismatch(_camel(name), _entries(ours, theirs, "the log"), _entries(theirs, ours, "live"))
            )
    return found


def _entries(these: Collection[Any], others: Collection[Any], other_side: str) -> str:
    """``3 (1 not in the log, 1 with another value), total 9950``: how many entries, how many
    the other side lacks or holds otherwise, and for amounts their sum."""
    missing = len(set(these) - set(others))
    text = f"{len(these)} ({missing} not {_in(other_side)}"
    if isinstance(these, Mapping) and isinstance(others, Mapping):
        other = sum(1 for key in these.keys() & others.keys() if these[key] != others[key])
        text += f", {other} with another value"
        if these and all(isinstance(value, int) for value in these.values()):
            text += f"), total {sum(these.values())}"
            return text
    return text + ")"


def render(value: object) -> str:
    """A value as the check shows it: absent as ``-``, a model as its set fields."""
    match value:
        case None:
            return ABSENT
        case datetime():
            return value.isoformat()
        case BaseModel():
            fields = value.model_dump(exclude_defaults=True)
            return " ".join(f"{_camel(name)}={_plain(v)}" for name, v in fields.items()) or "(empty)"
        case _:
            return str(value)


def _plain(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{value[key]}" for key in sorted(value)) + "}"
    return str(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)

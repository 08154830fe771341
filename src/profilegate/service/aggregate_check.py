"""Checking what is kept on write against the event log, writing nothing.

One invariant: everything kept on write is what the log gives. ``check_aggregates`` reads the
log once, as ``rebuild-aggregates`` does (``service.rebuild``), and holds against it:

- each surviving profile's aggregates (against the fold of the events that count for it);
- its checkout document and the checkout payload each of its identity keys carries (net spend
  per day of that fold, the profile's extensions and merge pointer; a copy not written yet is
  no difference: the checkout then reads the profile);
- its segment membership records, in every segment whose records are complete (the segments
  it is in by that fold's aggregates; merged-away and missing profiles are in none);
- the shop's day rollups of the days the log still covers (against the rollups of the logged
  events, as ``rebuild_shop_days`` makes them).

It lists each difference with the metric and both values (``domain.drift``). What time alone
changes is not a difference (see there). A profile tracked while the check reads it can show a
difference that is gone on the next run; so can a day rollup the gateway has not written yet
(written behind, within a second). Memory is O(events), like the rebuild.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from profilegate.domain.aggregates import Aggregates, cutoff_day, fold_events
from profilegate.domain.drift import (
    Memberships,
    Mismatch,
    aggregate_mismatches,
    checkout_mismatches,
    membership_mismatches,
    rollup_mismatches,
)
from profilegate.domain.profiles import Profile
from profilegate.domain.segment_predicate import holds
from profilegate.domain.segment_timing import time_dependent
from profilegate.domain.segments import Segment
from profilegate.domain.shop_days import ShopRules
from profilegate.domain.tiers import day_number, spend_by_day
from profilegate.service.rebuild import Logged, Progress, Stage, events_to_fold, profile_owners, read_log
from profilegate.service.segment_members import inside
from profilegate.service.shop_metrics import logged_rollups
from profilegate.storage.documents import Document
from profilegate.storage.store import Repositories

LAST_DAY = date(9999, 12, 31)


class Subject(StrEnum):
    PROFILE = "profile"
    SHOP_DAY = "shop_day"


@dataclass(frozen=True, order=True)
class Difference:
    """One metric of one profile (by id) or shop day rollup (by key, ``2026-11-20|web``)."""

    subject: Subject
    id: str
    metric: str
    live: str
    logged: str


@dataclass(frozen=True)
class CheckRules:
    """``retention_days``: the days a profile keeps buckets; ``log_days``: the days the event
    log keeps events (older day rollups are not checked); ``shop``: the shop's time zone."""

    retention_days: int
    log_days: int
    shop: ShopRules = field(default_factory=ShopRules)


@dataclass(frozen=True)
class Checked:
    profiles: int
    days: int
    events: int
    unattributed: int
    differences: tuple[Difference, ...]  # ordered by subject, id, metric

    def differing(self, subject: Subject) -> list[str]:
        """The ids of the profiles or days with a difference, in order."""
        return sorted({d.id for d in self.differences if d.subject is subject})


async def check_aggregates(
    repos: Repositories,
    rules: CheckRules,
    now: datetime,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> Checked:
    """Compare everything kept on write with the event log; write nothing."""
    report = on_progress or _ignore
    owners = await profile_owners(repos)
    documents: dict[str, Document] = {}
    grouped, unattributed = await read_log(repos, owners, report, lambda d: documents.setdefault(d["_id"], d))
    segments = await _complete_segments(repos)
    records = {s.key: await repos.segment_members.recorded(s.key) for s in segments}
    found: list[Difference] = []
    profile_ids = sorted(owners)
    report(Progress(Stage.CHECKING, 0, len(profile_ids)))
    for done, profile_id in enumerate(profile_ids, start=1):
        mismatches = await _check_profile(
            repos, profile_id, grouped.get(profile_id, {}), segments, records, rules, now
        )
        found.extend(Difference(Subject.PROFILE, profile_id, m.metric, m.live, m.logged) for m in mismatches)
        report(Progress(Stage.CHECKING, done, len(profile_ids)))
    found.extend(_missing_members(records, set(owners)))
    days, day_differences = await _check_days(repos, documents, rules, now)
    found.extend(day_differences)
    return Checked(len(profile_ids), days, len(documents), unattributed, tuple(sorted(found)))


async def _complete_segments(repos: Repositories) -> list[Segment]:
    """The segments whose member records are complete for their current version."""
    return [s for s in await repos.segments.all() if await repos.segment_members.built(s.key) == s.version]


async def _check_profile(
    repos: Repositories,
    profile_id: str,
    scanned: Logged,
    segments: list[Segment],
    records: dict[str, dict[str, datetime | None]],
    rules: CheckRules,
    now: datetime,
) -> list[Mismatch]:
    profile = await repos.profiles.get(profile_id)
    if profile is None:
        return []  # erased since the scan
    recorded = {key: members[profile_id] for key, members in records.items() if profile_id in members}
    if profile.merged_into is not None:
        return membership_mismatches([s.key for s in segments], Memberships(recorded, (), (), ()), now)
    logged = fold_events((await events_to_fold(repos, profile, scanned)).values(), now, rules.retention_days)
    cutoff = cutoff_day(now, rules.retention_days)
    found = aggregate_mismatches(profile.aggregates, logged, cutoff)
    found += await _checkout_mismatches(repos, profile, logged, date.fromisoformat(cutoff))
    found += membership_mismatches(
        [s.key for s in segments], _memberships(profile, logged, segments, recorded, now), now
    )
    return found


async def _checkout_mismatches(
    repos: Repositories, profile: Profile, logged: Aggregates, cutoff: date
) -> list[Mismatch]:
    expected = (spend_by_day(logged.daily), profile.extensions, profile.merged_into)
    first_day = day_number(cutoff)
    found: list[Mismatch] = []
    document = await repos.profiles.checkout_view(profile.id)
    if document is not None:
        carried = (document.spend, document.extensions, document.merged_into)
        found += checkout_mismatches("checkout", carried, expected, first_day)
    for where, identity in _named_identities(profile):
        answer = await repos.profiles.checkout_by_identity(identity)
        if answer is None or answer[0] != profile.id:
            owner = "-" if answer is None else answer[0]
            found.append(Mismatch(f"{where}.profileId", owner, profile.id))
        elif answer[1] is not None:
            view = answer[1]
            found += checkout_mismatches(
                where, (view.spend, view.extensions, view.merged_into), expected, first_day
            )
    return found


def _named_identities(profile: Profile) -> list[tuple[str, str]]:
    """Each identity key of the profile, named by its type (and place, for a second of a type)
    rather than its value, which is personal."""
    named: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for identity in profile.identities:
        kind = identity.type.value
        seen[kind] = seen.get(kind, 0) + 1
        suffix = "" if seen[kind] == 1 else f"#{seen[kind]}"
        named.append((f"identityKey.{kind}{suffix}", identity.key))
    return named


def _memberships(
    profile: Profile,
    logged: Aggregates,
    segments: list[Segment],
    recorded: dict[str, datetime | None],
    now: datetime,
) -> Memberships:
    rules = {s.key: s.rule for s in segments}
    folded = profile.model_copy(update={"aggregates": logged})
    at_write = {s.key for s in segments if holds(s.rule, folded, profile.updated_at, rules)}
    by_time = {s.key for s in segments if time_dependent(s.rule, rules)}
    return Memberships(recorded, inside(folded, segments, now).keys(), at_write, by_time)


def _missing_members(records: dict[str, dict[str, datetime | None]], known: set[str]) -> list[Difference]:
    """Member records of profiles that do not exist."""
    return [
        Difference(Subject.PROFILE, profile_id, f"segment.{key}", "member", "no such profile")
        for key, members in records.items()
        for profile_id in members
        if profile_id not in known
    ]


async def _check_days(
    repos: Repositories, documents: dict[str, Document], rules: CheckRules, now: datetime
) -> tuple[int, list[Difference]]:
    """The day rollups the log still covers against the rollups of the logged events."""
    # the first day all of whose events the log still holds (it drops them by when received)
    first = (now.astimezone(rules.shop.zone) - timedelta(days=rules.log_days)).date() + timedelta(days=1)
    live = {r.key: r for r in await repos.shop_days.up_to(LAST_DAY) if r.day >= first}
    logged = {key: r for key, r in logged_rollups(documents, rules.shop.zone).items() if r.day >= first}
    found = [
        Difference(Subject.SHOP_DAY, key, m.metric, m.live, m.logged)
        for key in sorted(live.keys() | logged.keys())
        for m in rollup_mismatches(live.get(key), logged.get(key))
    ]
    return len(live.keys() | logged.keys()), found


def _ignore(progress: Progress) -> None:
    pass

"""Rebuilding every profile's aggregates from the event log.

The log is the record of what happened; a profile's aggregates are a fold over it. A rebuild
reads the whole log once, groups the events by the surviving profile they count for, folds
each group from empty aggregates in event-time order, and writes each profile with the same
version-guarded update that tracking uses. Use it after a change to how events count, or to
repair profiles; it is safe while the gateway runs.

Memory is O(events): every logged event (each id once per profile) is held until its
profile is written, plus the merge pointers of every profile.

Only what the log still holds counts: events past its retention are gone from it, so a
rebuild's lifetime totals cover the log's retention, not the profile's whole life.

An event logged under a profile that was merged away counts for the profile it was merged
into, hop by hop, but only once that profile has taken it in (lists it in ``mergedFrom``):
until an interrupted merge is finished, its events stay with the merged-away profile, whose
aggregates the merge will add. Merged-away profiles themselves are left as they are.

A profile is written (and counted as changed) only when a metric differs from the fold, as
``domain.drift`` compares them, the same comparison ``rebuild-aggregates --check`` makes. The
replay guard is no metric: tracking keeps its ids in the order the events arrived, the fold in
event-time order, so a profile that took late events (an import of older orders, an event
dated back) holds the same ids in another order, and is left as it is.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from profilegate.domain.aggregates import Aggregates, cutoff_day, event_digest, fold_events
from profilegate.domain.drift import Mismatch, aggregate_mismatches
from profilegate.domain.events import TrackedEvent
from profilegate.domain.profiles import Profile
from profilegate.service.profiles import MAX_ATTEMPTS, ConcurrentModification, pause_before_retry
from profilegate.storage.documents import Document
from profilegate.storage.events import event_from_document
from profilegate.storage.profiles import MergePointers
from profilegate.storage.store import Repositories

type Logged = dict[str, TrackedEvent]


class Stage(StrEnum):
    READING = "reading the event log"
    WRITING = "rebuilding profiles"
    CHECKING = "checking profiles"


@dataclass(frozen=True)
class Progress:
    stage: Stage
    done: int
    total: int | None


@dataclass(frozen=True)
class Rebuilt:
    """Profiles written (``changed`` of them differed), the events folded into them, and the
    logged events that count for no profile (it is gone, or in a merge not yet finished);
    ``changes``: what differed, by profile id."""

    profiles: int
    changed: int
    events: int
    unattributed: int
    changes: dict[str, list[Mismatch]]


async def rebuild_aggregates(
    repos: Repositories,
    now: datetime,
    retention_days: int,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> Rebuilt:
    """Recompute and write every surviving profile's aggregates from the event log."""
    report = on_progress or _ignore
    owners = await profile_owners(repos)
    grouped, unattributed = await read_log(repos, owners, report)
    live = sorted(profile_id for profile_id, owner in owners.items() if owner == profile_id)
    profiles = events = 0
    changes: dict[str, list[Mismatch]] = {}
    report(Progress(Stage.WRITING, 0, len(live)))
    for done, profile_id in enumerate(live, start=1):
        written = await _rebuild_profile(repos, profile_id, grouped.pop(profile_id, {}), now, retention_days)
        if written is not None:
            profiles += 1
            events += written[0]
            if written[1] is not None:
                changes[profile_id] = written[1]
        report(Progress(Stage.WRITING, done, len(live)))
    return Rebuilt(profiles, len(changes), events, unattributed, changes)


async def profile_owners(repos: Repositories) -> dict[str, str | None]:
    """Every profile id with the profile its logged events count for (None: for none yet)."""
    pointers = {p.id: p async for p in repos.profiles.merge_pointers()}
    return {profile_id: _survivor(profile_id, pointers) for profile_id in pointers}


def _survivor(profile_id: str, pointers: dict[str, MergePointers]) -> str | None:
    """The profile whose aggregates this one's events count for, or None."""
    current, passed = profile_id, {profile_id}
    while (target := pointers[current].merged_into) is not None:
        absorbed = target in pointers and current in pointers[target].merged_from
        if not absorbed or target in passed:
            return None
        current = target
        passed.add(current)
    return current


async def read_log(
    repos: Repositories,
    owners: dict[str, str | None],
    report: Callable[[Progress], None],
    also: Callable[[Document], object] | None = None,
) -> tuple[dict[str, Logged], int]:
    """The logged events by the profile they count for (each id once per profile), and how many
    count for none; ``also`` sees every logged document as the one read goes by."""
    grouped: dict[str, Logged] = {}
    unattributed: set[str] = set()
    read = 0
    async for document in repos.events.scan():
        if also is not None:
            also(document)
        owner = owners.get(document["profileId"])
        if owner is None:
            unattributed.add(document["_id"])
        else:
            logged = grouped.setdefault(owner, {})
            if document["_id"] not in logged:
                logged[document["_id"]] = event_from_document(document)
        read += 1
        report(Progress(Stage.READING, read, None))
    report(Progress(Stage.READING, read, read))
    return grouped, len(unattributed)


async def _rebuild_profile(
    repos: Repositories,
    profile_id: str,
    logged: Logged,
    now: datetime,
    retention_days: int,
) -> tuple[int, list[Mismatch] | None] | None:
    """Write the fold of the profile's logged events; the events folded and, if it changed,
    what differed.

    If the profile has applied an event the scan did not see (tracked since, or merged in
    since), or another writer got in first, its events are read from the log again, after the
    profile, so that every event applied at the version the write is guarded on is among them.
    """
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await pause_before_retry(attempt)
        profile = await repos.profiles.get(profile_id)
        if profile is None or profile.merged_into is not None:
            return None  # erased or merged away since the scan
        logged = await events_to_fold(repos, profile, logged, again=attempt > 0)
        aggregates = fold_events(logged.values(), now, retention_days)
        changed = aggregate_mismatches(profile.aggregates, aggregates, cutoff_day(now, retention_days))
        if not changed:  # the replay guard may hold the same ids in another order: arrival, not event time
            return len(logged), None
        rebuilt = profile.model_copy(
            update={"aggregates": aggregates, "version": profile.version + 1, "updated_at": now}
        )
        if await repos.profiles.replace_fields(rebuilt, expected_version=profile.version):
            return len(logged), changed
    raise ConcurrentModification(profile_id)


async def events_to_fold(
    repos: Repositories, profile: Profile, scanned: Logged, *, again: bool = False
) -> Logged:
    """The profile's events as the scan of the log found them, or, if the profile has applied
    an event the scan did not see (or ``again``), its events read from the log now."""
    if again or not set(profile.aggregates.recent_event_ids) <= {event_digest(i) for i in scanned}:
        return await own_events(repos, profile)
    return scanned


async def own_aggregates(
    repos: Repositories, profile: Profile, now: datetime, retention_days: int
) -> Aggregates:
    """The fold of the profile's own logged events, read now: what a rebuild writes for it."""
    return fold_events((await own_events(repos, profile)).values(), now, retention_days)


async def own_events(repos: Repositories, profile: Profile) -> Logged:
    """The logged events of the profile and of every profile it has taken in, read now."""
    return await _logged_for(repos, await _merged_sources(repos, profile))


async def _merged_sources(repos: Repositories, profile: Profile) -> set[str]:
    """The profile and every profile it has taken in, directly or through others, read now."""
    sources = {profile.id}
    pending = [(loser, profile.id) for loser in profile.merged_from]
    while pending:
        loser_id, target = pending.pop()
        loser = None if loser_id in sources else await repos.profiles.get(loser_id)
        if loser is not None and loser.merged_into == target:
            sources.add(loser_id)
            pending.extend((further, loser_id) for further in loser.merged_from)
    return sources


async def _logged_for(repos: Repositories, profile_ids: Iterable[str]) -> Logged:
    return {
        document["_id"]: event_from_document(document)
        for document in await repos.events.for_profiles(profile_ids)
    }


def _ignore(progress: Progress) -> None:
    pass

"""Tracking: validate a batch, log it, and fold it into each profile's aggregates.

Per profile, the flow is: log the events (a duplicate key counts as logged), then one
atomic, version-guarded update of the profile that applies only events whose ids it has not
applied before. A crash between the two steps is healed by the replay: the log write is a
no-op, the profile update happens. A replay of an applied event is reported as duplicate.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from profilegate.domain.aggregates import BASE_ONLY, apply_checked, event_digest, order_refusals
from profilegate.domain.coupons import CouponRefused
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.events import EventRules, TrackedEvent, parse_event
from profilegate.domain.orders import OrderRefused
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.shop_days import ShopRules, day_rollups
from profilegate.service.batch_profiles import profiles_of_batch
from profilegate.service.coupons import redeem_orders, release
from profilegate.service.observers import UNOBSERVED, ProfileObserver, ProfileWrite
from profilegate.service.profiles import MAX_ATTEMPTS, ConcurrentModification, ProfileRules
from profilegate.service.resolve import find_profile
from profilegate.storage.events import UNLOGGED_CLAIM
from profilegate.storage.profiles import Activity
from profilegate.storage.store import Repositories

MAX_BATCH = 500
ID_USED_ELSEWHERE = "the event id was already tracked for another profile"
# Profiles of one batch a rival writer changed meanwhile, applied again at once; each is
# one read and one guarded write.
CONCURRENCY = 16


class Status(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class EventOutcome:
    id: str | None
    status: Status
    reason: str | None = None


@dataclass(frozen=True)
class TrackResult:
    results: list[EventOutcome]

    def count(self, status: Status) -> int:
        return sum(1 for result in self.results if result.status is status)


@dataclass(frozen=True)
class TrackingRules:
    events: EventRules
    profiles: ProfileRules
    retention_days: int = 400
    max_batch: int = MAX_BATCH
    shop: ShopRules = field(default_factory=ShopRules)


type Screen = Callable[[TrackedEvent], str | None]


@dataclass
class _Group:
    events: list[tuple[int, TrackedEvent]] = field(default_factory=list)
    outcomes: dict[int, EventOutcome] = field(default_factory=dict)


async def track(
    repos: Repositories,
    raw_events: Sequence[object],
    rules: TrackingRules,
    now: datetime,
    *,
    changed: Callable[[set[str]], Awaitable[None]] | None = None,
    observer: ProfileObserver = UNOBSERVED,
    screen: Screen | None = None,
) -> TrackResult:
    """Apply a batch; every event gets its own outcome and the valid rest is applied.

    The whole batch costs a fixed number of round trips, however many profiles it touches: one
    lookup of its profiles (``batch_profiles``), one log append, one bulk write of the profiles
    (and of the checkout documents whose content changed), one append to the feed; the shop's
    day rollups are handed to ``repos.shop_days``, which the
    gateway writes behind (``service.shop_rollups``). A profile another writer changed
    meanwhile is applied again on its own.

    ``changed`` is called with the ids of the profiles events were applied to, once they are.
    ``screen`` answers, for each valid event, why the caller may not send it (None: it may).
    """
    if len(raw_events) > rules.max_batch:
        reason = f"the batch holds {len(raw_events)} events, more than the limit of {rules.max_batch}"
        return TrackResult([EventOutcome(_raw_id(raw), Status.REJECTED, reason) for raw in raw_events])
    with repos.shop_days.receiving(now):  # its events are logged before their rollups are written
        return await _track(repos, raw_events, rules, now, changed, observer, screen)


async def _track(
    repos: Repositories,
    raw_events: Sequence[object],
    rules: TrackingRules,
    now: datetime,
    changed: Callable[[set[str]], Awaitable[None]] | None,
    observer: ProfileObserver,
    screen: Screen | None,
) -> TrackResult:
    outcomes: list[EventOutcome | None] = [None] * len(raw_events)
    counted: dict[int, TrackedEvent] = {}
    parsed = _parsed(raw_events, rules, now, outcomes, screen)
    groups = _grouped(await _addressed(repos, parsed, outcomes, counted))
    found = await profiles_of_batch(repos, list(groups), rules.profiles, now, observer)
    for ref, error in found.refused.items():
        for index, event in groups[ref].events:
            outcomes[index] = EventOutcome(event.id, Status.REJECTED, error.message)
    resolved = _by_profile([(groups[ref], profile) for ref, profile in (found.stored | found.fresh).items()])
    for index, outcome in _refused_by_orders(resolved, rules):
        outcomes[index] = outcome
    # An event the profile's replay guard already holds was logged before it was applied:
    # a replay needs no second log entry (and would only grow the log).
    guards = {profile.id: frozenset(profile.aggregates.recent_event_ids) for _, profile in resolved}
    taken = await repos.events.append(
        [
            (event, profile.id)
            for group, profile in resolved
            for _, event in group.events
            if event_digest(event.id) not in guards[profile.id]
        ],
        now,
    )
    for index, outcome in await _reused_elsewhere(repos, resolved, taken):
        outcomes[index] = outcome
    fresh = {profile.id for profile in found.fresh.values()}
    applied = await _apply_all(repos, resolved, fresh, rules, now, observer)
    for index, outcome in applied:
        outcomes[index] = outcome
    touched = {
        profile.id for group, profile in resolved if any(_accepted(outcomes[i]) for i, _ in group.events)
    }
    for index, event in counted.items():
        if _not_applied(outcomes[index]):
            await release(repos, event)
    if changed is not None and touched:
        await changed(touched)
    return TrackResult([outcome for outcome in outcomes if outcome is not None])


def _refused_by_orders(
    resolved: list[tuple[_Group, Profile]], rules: TrackingRules
) -> list[tuple[int, EventOutcome]]:
    """Take out of their groups, before anything is logged, the order events their profile's
    order index refuses (``domain.orders``): a refused event is never logged."""
    refused: list[tuple[int, EventOutcome]] = []
    for group, profile in resolved:
        reasons = order_refusals(profile.aggregates, [e for _, e in group.events], rules.events.currencies)
        if not reasons:
            continue
        refused += [(i, _rejected(e, reasons[e.id])) for i, e in group.events if e.id in reasons]
        group.events = [(i, e) for i, e in group.events if e.id not in reasons]
    return refused


def _rejected(event: TrackedEvent, error: DomainError) -> EventOutcome:
    return EventOutcome(event.id, Status.REJECTED, error.message)


def _by_profile(pairs: list[tuple[_Group, Profile]]) -> list[tuple[_Group, Profile]]:
    """One group per profile: references by id and by identities of one person are joined."""
    joined: dict[str, tuple[_Group, Profile]] = {}
    for group, profile in pairs:
        if profile.id in joined:
            group = _Group(
                events=sorted(joined[profile.id][0].events + group.events, key=lambda item: item[0])
            )
        joined[profile.id] = (group, profile)
    return list(joined.values())


def _not_applied(outcome: EventOutcome | None) -> bool:
    """The event is on no profile of its person: refused, or its id named another person's event.
    (A plain duplicate was applied, by this batch's rival or before.)"""
    if outcome is None or outcome.status is Status.REJECTED:
        return True
    return outcome.status is Status.DUPLICATE and outcome.reason == ID_USED_ELSEWHERE


def _accepted(outcome: EventOutcome | None) -> bool:
    return outcome is not None and outcome.status is Status.ACCEPTED


def _parsed(
    raw_events: Sequence[object],
    rules: TrackingRules,
    now: datetime,
    outcomes: list[EventOutcome | None],
    screen: Screen | None,
) -> list[tuple[int, TrackedEvent]]:
    """The valid events of the batch the caller may send, each id once; the others' outcomes are set."""
    parsed: list[tuple[int, TrackedEvent]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_events):
        try:
            event = parse_event(raw, rules.events, now)
        except InvalidInput as error:
            outcomes[index] = EventOutcome(_raw_id(raw), Status.REJECTED, error.message)
            continue
        refusal = None if screen is None else screen(event)
        if refusal is not None:
            outcomes[index] = EventOutcome(event.id, Status.REJECTED, refusal)
            continue
        if event.id in seen:
            outcomes[index] = EventOutcome(event.id, Status.DUPLICATE)
            continue
        seen.add(event.id)
        parsed.append((index, event))
    return parsed


async def _addressed(
    repos: Repositories,
    parsed: list[tuple[int, TrackedEvent]],
    outcomes: list[EventOutcome | None],
    counted: dict[int, TrackedEvent],
) -> list[tuple[int, TrackedEvent]]:
    """The events with their coupons redeemed (orders with a coupon only: see ``redeem_orders``);
    ``counted`` gets the events whose redemption this batch counted, to take back any that is
    not applied after all."""
    kept: list[tuple[int, TrackedEvent]] = []
    redeemed = await redeem_orders(repos, [event for _, event in parsed])
    for (index, event), found in zip(parsed, redeemed, strict=True):
        if isinstance(found.outcome, CouponRefused):
            outcomes[index] = EventOutcome(event.id, Status.REJECTED, found.outcome.message)
            continue
        kept.append((index, found.outcome))
        if found.counted:
            counted[index] = found.outcome
    return kept


def _grouped(parsed: list[tuple[int, TrackedEvent]]) -> dict[ProfileRef, _Group]:
    """The events by the profile they name."""
    groups: dict[ProfileRef, _Group] = {}
    for index, event in parsed:
        groups.setdefault(event.target, _Group()).events.append((index, event))
    return groups


async def _apply_all(
    repos: Repositories,
    resolved: list[tuple[_Group, Profile]],
    fresh: set[str],
    rules: TrackingRules,
    now: datetime,
    observer: ProfileObserver,
) -> list[tuple[int, EventOutcome]]:
    """Fold each group into its profile, all in one bulk write; ``fresh``: profiles this batch made."""
    outcomes: list[tuple[int, EventOutcome]] = []
    writes: list[ProfileWrite] = []
    activities: dict[str, tuple[_Group, Activity, list[TrackedEvent]]] = {}
    replayed: list[Profile] = []
    for group, profile in resolved:
        if profile.id in fresh:
            writes.append(ProfileWrite(None, profile))  # stored by ``batch_profiles``: told in any case
        try:
            events = [e for _, e in group.events]
            currencies = rules.events.currencies
            done = apply_checked(profile.aggregates, events, now, rules.retention_days, currencies)
        except DomainError as error:
            outcomes += [(i, EventOutcome(e.id, Status.REJECTED, error.message)) for i, e in group.events]
            continue
        aggregates, applied = done.aggregates, done.applied
        outcomes += [(i, _rejected(e, done.refused[e.id])) for i, e in group.events if e.id in done.refused]
        group.events = [(i, e) for i, e in group.events if e.id not in done.refused]
        updated = profile.model_copy(update={"aggregates": aggregates, "version": profile.version + 1})
        if applied:
            activities[profile.id] = (
                group,
                Activity(updated.model_copy(update={"updated_at": now}), profile),
                applied,
            )
        else:
            # A replay: the write it repeats may have died before the checkout copy was made.
            replayed.append(profile)
            outcomes += _outcomes(group, set())
    if replayed:
        await repos.profiles.refresh_checkouts(replayed)
    # Before the profiles: an event a profile's replay guard holds is in its shop day already
    # (or in the write-behind buffer, which a crash leaves to the recovery from the log), so a
    # replay after a crash in between finds the event new and writes both again (a rollup is a
    # set: the second write changes nothing).
    applied_here = [(event, pid) for pid, (_, _, applied) in activities.items() for event in applied]
    await repos.shop_days.add(day_rollups(applied_here, rules.shop.zone))
    written = await repos.profiles.write_activities([activity for _, activity, _ in activities.values()])
    for profile_id, (group, activity, applied) in activities.items():
        if profile_id in written:
            writes.append(ProfileWrite(activity.previous, activity.profile, applied))
            outcomes += _outcomes(group, {e.id for e in applied})
    await observer.changed_all(writes, now)
    raced = [
        (group, activity.previous) for pid, (group, activity, _) in activities.items() if pid not in written
    ]
    for batch in await _bounded_gather(
        [_apply_group(repos, group, profile, rules, now, observer) for group, profile in raced]
    ):
        outcomes += batch
    return outcomes


def _outcomes(group: _Group, applied: set[str]) -> list[tuple[int, EventOutcome]]:
    return [
        (i, EventOutcome(e.id, Status.ACCEPTED if e.id in applied else Status.DUPLICATE))
        for i, e in group.events
    ]


async def _reused_elsewhere(
    repos: Repositories, resolved: list[tuple[_Group, Profile]], taken: dict[str, str]
) -> list[tuple[int, EventOutcome]]:
    """Take out of their groups the events whose id was logged for another person, as duplicates.

    An event id names one event in the whole shop (as Segment's ``messageId`` does): a second
    use for another profile is a replay, not news. Logged for a profile that was merged into
    this one since, it is this person's event (its application may have died half-way).
    """
    if not taken:
        return []
    survivors: dict[str, str | None] = {}
    for owner in set(taken.values()):
        found = await find_profile(repos, ProfileRef(id=owner)) if owner != UNLOGGED_CLAIM else None
        survivors[owner] = None if found is None else found.id
    reused: list[tuple[int, EventOutcome]] = []
    for group, profile in resolved:
        kept = []
        for index, event in group.events:
            logged_for = taken.get(event.id)
            if logged_for is not None and survivors[logged_for] != profile.id:
                reused.append((index, EventOutcome(event.id, Status.DUPLICATE, ID_USED_ELSEWHERE)))
            else:
                kept.append((index, event))
        group.events = kept
    return reused


async def _apply_group(
    repos: Repositories,
    group: _Group,
    profile: Profile,
    rules: TrackingRules,
    now: datetime,
    observer: ProfileObserver,
) -> list[tuple[int, EventOutcome]]:
    events = [event for _, event in group.events]
    try:
        applied, refused = await apply_to_profile(
            repos, profile.id, events, rules.retention_days, now, observer=observer, rules=rules.events
        )
    except DomainError as error:
        return [(i, EventOutcome(e.id, Status.REJECTED, error.message)) for i, e in group.events]
    rejected = [(i, _rejected(e, refused[e.id])) for i, e in group.events if e.id in refused]
    group.events = [(i, e) for i, e in group.events if e.id not in refused]
    return rejected + _outcomes(group, applied)


async def _bounded_gather[T](work: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run per-profile work concurrently, at most ``CONCURRENCY`` at a time, results in order."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def guarded(item: Coroutine[Any, Any, T]) -> T:
        async with limit:
            return await item

    return list(await asyncio.gather(*(guarded(item) for item in work)))


async def log_events(repos: Repositories, profile_id: str, events: list[TrackedEvent], now: datetime) -> None:
    await repos.events.append([(event, profile_id) for event in events], now)


async def apply_to_profile(
    repos: Repositories,
    profile_id: str,
    events: list[TrackedEvent],
    retention_days: int,
    now: datetime,
    *,
    known: Profile | None = None,
    observer: ProfileObserver = UNOBSERVED,
    rules: EventRules | None = None,
) -> tuple[set[str], dict[str, OrderRefused]]:
    """Fold the events into the profile in one guarded write; return the ids newly applied and
    the events the order rules refused (``rules.currencies`` names their money).

    ``known``: the profile as just read, which saves reading it again when no one else wrote.
    """
    currencies = BASE_ONLY if rules is None else rules.currencies
    for _ in range(MAX_ATTEMPTS):
        profile = known or await find_profile(repos, ProfileRef(id=profile_id))
        known = None
        if profile is None:
            raise InvalidInput("profileId", f"no profile {profile_id}")
        done = apply_checked(profile.aggregates, events, now, retention_days, currencies)
        aggregates, applied = done.aggregates, done.applied
        if not applied:
            # A replay: the write it repeats may have died before the checkout copy was made.
            await repos.profiles.refresh_checkout(profile)
            return set(), done.refused
        updated = profile.model_copy(
            update={"aggregates": aggregates, "version": profile.version + 1, "updated_at": now}
        )
        if await repos.profiles.write_activity(
            updated, expected_version=profile.version, previous=profile.aggregates
        ):
            await observer.changed(profile, updated, now, events=applied)
            return {event.id for event in applied}, done.refused
    raise ConcurrentModification(profile_id)


def _raw_id(raw: object) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("id")
        return value if isinstance(value, str) else None
    return None

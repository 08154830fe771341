"""Merges an admin asks for: ``mergeProfiles`` (forcing past the customer-id guard) and undoing a
merge (``unmergeProfiles``), which gives the two people it joined their own back.

What each side gets is in docs/merges.md and ``domain.merges``. Like a merge, an unmerge needs no
transaction: each step is one idempotent write (the profiles' single-document and version-guarded),
and calling it again for the same loser finishes an unmerge a crash interrupted, at any step:

1. the merge record is marked (who, when, why), so that a later call finishes the job even once the
   loser stands alone again;
2. the loser's identity keys name the loser again (lookups still reach the winner, through the
   loser's pointer);
3. the events logged under the winner's side that named the loser's identities, its id or the ids
   of the profiles merged into it are logged under the loser (``EventLog.reattribute``);
4. the loser is restored with the fold of its own events: lookups and events by its identities and
   its id reach it from now on;
5. step 3 again, for events that reached the winner while step 4 was under way (the loser is
   rebuilt if any did);
6. the winner is restored with the fold of its own events (rebuilt only, if a replay finds it
   restored already);
7. both checkout payloads are carried to their keys and the feed is told (``PROFILES_UNMERGED``);
8. the record is moved aside, marked undone.

Each profile write goes through ``ProfileRepository.replace_fields`` (checkout documents, segment
memberships) and the observer (the feed), like any profile change. Limit: an event that resolved
to the winner before step 4 and is logged after step 5 stays with the winner.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from profilegate.domain.aggregates import Aggregates
from profilegate.domain.errors import InvalidInput, ProfileNotFound
from profilegate.domain.keys import Principal
from profilegate.domain.merges import (
    MergeRecord,
    UndoMark,
    UnmergeOutOfOrder,
    check_identity_cap,
    check_not_blocked,
    holds_loser,
    loser_restored,
    winner_restored,
)
from profilegate.domain.profiles import Profile
from profilegate.domain.reasons import check_reason
from profilegate.domain.refs import ProfileRef, id_key
from profilegate.service.gdpr import merged_profiles
from profilegate.service.identify import IdentifyRules, merge_into
from profilegate.service.observers import UNOBSERVED, ProfileObserver
from profilegate.service.profiles import MAX_ATTEMPTS, ConcurrentModification, pause_before_retry
from profilegate.service.rebuild import own_aggregates
from profilegate.service.resolve import require_profile
from profilegate.storage.store import Repositories

type Build = Callable[[Profile, Aggregates], Profile | None]


@dataclass(frozen=True)
class Merged:
    profile: Profile
    merged_profile_id: str


@dataclass(frozen=True)
class Unmerged:
    """``profile``: the winner without the loser; ``restored``: the loser on its own again."""

    profile: Profile
    restored: Profile


async def merge_profiles(
    repos: Repositories,
    into: ProfileRef,
    from_: ProfileRef,
    rules: IdentifyRules,
    by: Principal,
    reason: str,
    now: datetime,
    *,
    observer: ProfileObserver = UNOBSERVED,
) -> Merged:
    """Merge the profile ``from_`` names into the one ``into`` names (it wins, whatever the ages).
    The blocked-identifier and identity-cap guards hold; different customer ids do not stop it."""
    reason = check_reason(reason)
    winner, loser = await require_profile(repos, into), await require_profile(repos, from_)
    if winner.id == loser.id:
        raise InvalidInput("from", f"{from_.describe()} and {into.describe()} are one profile already")
    for profile, field in ((winner, "into"), (loser, "from")):
        check_not_blocked([(i, field) for i in profile.identities], rules.blocked_identities)
    check_identity_cap([winner, loser], (), rules.profiles.max_identities)
    await merge_into(
        repos, winner.id, loser.id, rules, by, f"mergeProfiles: {reason}", now, observer=observer
    )
    return Merged(await require_profile(repos, ProfileRef(id=winner.id)), loser.id)


async def unmerge(
    repos: Repositories,
    loser_id: str,
    rules: IdentifyRules,
    by: Principal,
    reason: str,
    now: datetime,
    *,
    observer: ProfileObserver = UNOBSERVED,
) -> Unmerged:
    """Undo the merge that folded ``loser_id`` away; see the module's text for the steps."""
    reason = check_reason(reason)
    loser = await repos.profiles.get(loser_id)
    if loser is None:
        raise ProfileNotFound(f"id {loser_id}")
    record = await repos.merges.get(loser_id)
    if loser.merged_into is None:
        if record is None or record.undo is None:
            raise InvalidInput("profileId", await _not_merged(repos, loser_id))
        return await _undo(repos, record, rules, now, observer)  # one a crash interrupted
    winner = await _winner(repos, loser.id, loser.merged_into)
    if record is None or record.winner != winner.id:  # a merge a crash left unlogged: finish it first
        await merge_into(
            repos, winner.id, loser.id, rules, by, "finished for an unmerge", now, observer=observer
        )
    marked = await repos.merges.start_undo(loser.id, UndoMark(at=now, by=by.name, reason=reason))
    if marked is None:
        raise ConcurrentModification(loser.id)  # erased meanwhile
    return await _undo(repos, marked, rules, now, observer)


async def _not_merged(repos: Repositories, loser_id: str) -> str:
    undone = await repos.merges.undone(loser_id)
    if not undone:
        return f"profile {loser_id} is not merged into another profile"
    last = undone[-1]
    when = last.undo.done if last.undo is not None and last.undo.done is not None else last.at
    return f"profile {loser_id} is not merged: its merge into {last.winner} was undone at {when.isoformat()}"


async def _winner(repos: Repositories, loser_id: str, winner_id: str) -> Profile:
    winner = await repos.profiles.get(winner_id)
    if winner is None:
        raise InvalidInput("profileId", f"profile {loser_id} was merged into {winner_id}, which is gone")
    if winner.merged_into is not None:
        raise UnmergeOutOfOrder(loser_id, winner.id, winner.merged_into)
    return winner


async def _undo(
    repos: Repositories, record: MergeRecord, rules: IdentifyRules, now: datetime, observer: ProfileObserver
) -> Unmerged:
    await _winner(repos, record.loser, record.winner)
    for key in record.identities:
        await repos.identity_keys.repoint(key, record.winner, record.loser)
    await _reattribute(repos, record)
    days = rules.retention_days

    def restore_loser(loser: Profile, aggregates: Aggregates) -> Profile | None:
        if loser.merged_into == record.winner:
            return loser_restored(loser, aggregates, now)
        return _rebuilt(loser, aggregates, now)

    def restore_winner(winner: Profile, aggregates: Aggregates) -> Profile | None:
        if holds_loser(winner, record):
            return winner_restored(winner, record, aggregates, now)
        return _rebuilt(winner, aggregates, now)

    restored = await _rewrite(repos, record.loser, restore_loser, days, now, observer)
    if await _reattribute(repos, record):
        restored = await _rewrite(repos, record.loser, lambda p, a: _rebuilt(p, a, now), days, now, observer)
    winner = await _rewrite(repos, record.winner, restore_winner, days, now, observer)
    for profile in (restored, winner):
        await repos.profiles.refresh_checkout(profile)
    await observer.unmerged(winner, restored, now)
    await repos.merges.finish_undo(record, now)
    return Unmerged(profile=winner, restored=restored)


async def _reattribute(repos: Repositories, record: MergeRecord) -> int:
    """Log under the loser the events of the winner's side that named the loser's side."""
    loser_side = await _person(repos, record.loser)
    winner_side = await _person(repos, record.winner) - loser_side
    via = [*record.identities, *(id_key(profile_id) for profile_id in sorted(loser_side))]
    return await repos.events.reattribute(sorted(winner_side), via, record.loser)


async def _person(repos: Repositories, profile_id: str) -> set[str]:
    """The profile and every profile merged into it, at any depth."""
    profile = await repos.profiles.get(profile_id)
    if profile is None:
        raise InvalidInput("profileId", f"profile {profile_id} is gone")
    return {p.id for p in await merged_profiles(repos, profile)}


async def _rewrite(
    repos: Repositories,
    profile_id: str,
    build: Build,
    retention_days: int,
    now: datetime,
    observer: ProfileObserver,
) -> Profile:
    """Write ``build`` of the profile and the fold of its own events, guarded on its version."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await pause_before_retry(attempt)
        current = await repos.profiles.get(profile_id)
        if current is None:
            raise InvalidInput("profileId", f"profile {profile_id} is gone")
        wanted = build(current, await own_aggregates(repos, current, now, retention_days))
        if wanted is None:
            return current
        if await repos.profiles.replace_fields(wanted, expected_version=current.version, previous=current):
            await observer.changed(current, wanted, now)
            return wanted
    raise ConcurrentModification(profile_id)


def _rebuilt(profile: Profile, aggregates: Aggregates, now: datetime) -> Profile | None:
    if profile.aggregates == aggregates:
        return None
    return profile.model_copy(
        update={"aggregates": aggregates, "version": profile.version + 1, "updated_at": now}
    )

"""Identity resolution: link an anonymous visitor to a known customer, merging profiles.

A merge never needs a transaction. It is done in steps that each are one atomic,
version-guarded write, and any step can be replayed:

1. the loser is marked ``mergedInto`` the winner, so from now on every lookup and every
   new event for it reaches the winner;
2. the winner takes in the loser's identities, traits, consents, extensions and aggregates,
   and records the loser in ``mergedFrom`` (so it never takes it in twice);
3. the loser's identity keys are re-pointed to the winner (lookups already follow the
   pointer; this only saves the extra read);
4. the merge is logged, with what the winner held before (so that ``unmergeProfiles`` can
   undo it: ``service.unmerge``).

If the process dies after step 1, the next lookup through the loser (``identify`` again, or
any resolution that passes the pointer) finds the winner without the loser in
``mergedFrom`` and finishes the job.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import Identity
from profilegate.domain.keys import Principal
from profilegate.domain.merges import (
    WinnerBefore,
    absorb,
    check_customer_ids,
    check_identity_cap,
    check_known_apart,
    check_not_blocked,
    choose_winner,
    winner_before,
)
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.observers import UNOBSERVED, ProfileObserver
from profilegate.service.profiles import (
    MAX_ATTEMPTS,
    ConcurrentModification,
    ProfileChange,
    ProfileRules,
    upsert_profile,
)
from profilegate.service.resolve import resolve_chain
from profilegate.service.tombstones import refuse_erased_identities
from profilegate.storage.store import Repositories


@dataclass(frozen=True)
class IdentifyRules:
    profiles: ProfileRules
    blocked_identities: frozenset[str]
    retention_days: int


@dataclass(frozen=True)
class Identified:
    profile: Profile
    created: bool
    merged: tuple[str, ...]


async def identify(
    repos: Repositories,
    anonymous: Identity | None,
    identities: tuple[Identity, ...],
    traits: dict[str, Any],
    rules: IdentifyRules,
    by: Principal,
    now: datetime,
    *,
    observer: ProfileObserver = UNOBSERVED,
    may_merge_known: bool = True,
) -> Identified:
    """Make every given identity name one profile, merging the profiles they named.

    Profiles holding different customer ids are never merged (``check_customer_ids``); without
    ``may_merge_known`` (a storefront key) neither are two that each hold a known identity."""
    wanted = tuple(dict.fromkeys(((anonymous,) if anonymous else ()) + identities))
    if not wanted:
        raise InvalidInput("identities", "give an anonymousId or at least one identity")
    fields = [(identity, f"identities[{index}].value") for index, identity in enumerate(identities)]
    check_not_blocked(
        [*([(anonymous, "anonymousId")] if anonymous else []), *fields], rules.blocked_identities
    )
    found = await _profiles_named(repos, wanted, rules, by, now, observer)
    known = {identity for profile in found for identity in profile.identities}
    await refuse_erased_identities(repos, [identity for identity in wanted if identity not in known])
    if not found:
        change = ProfileChange(ref=ProfileRef(identity=wanted[0]), identities=wanted[1:], traits=traits)
        created = await upsert_profile(repos, change, rules.profiles, now, observer=observer)
        return Identified(created.profile, created=created.created, merged=())
    winner = choose_winner(found)
    losers = sorted((p for p in found if p.id != winner.id), key=lambda p: (p.created_at, p.id))
    check_identity_cap(found, wanted, rules.profiles.max_identities)
    check_customer_ids(found)
    if not may_merge_known:
        check_known_apart(found)
    reason = "identify: " + ", ".join(identity.key for identity in wanted)
    for loser in losers:
        await merge_into(repos, winner.id, loser.id, rules, by, reason, now, observer=observer)
    change = ProfileChange(ref=ProfileRef(id=winner.id), identities=wanted, traits=traits)
    updated = await upsert_profile(repos, change, rules.profiles, now, observer=observer)
    return Identified(updated.profile, created=False, merged=tuple(loser.id for loser in losers))


async def _profiles_named(
    repos: Repositories,
    identities: tuple[Identity, ...],
    rules: IdentifyRules,
    by: Principal,
    now: datetime,
    observer: ProfileObserver,
) -> list[Profile]:
    """The surviving profiles the identities name, finishing any merge a crash interrupted."""
    found: dict[str, Profile] = {}
    for identity in identities:
        survivor, passed = await resolve_chain(repos, ProfileRef(identity=identity))
        if survivor is None:
            continue
        for loser in passed:
            if loser.merged_into == survivor.id and not await _taken_in(repos, survivor, loser.id):
                await merge_into(
                    repos,
                    survivor.id,
                    loser.id,
                    rules,
                    by,
                    "resumed after an interruption",
                    now,
                    observer=observer,
                )
        refreshed = await repos.profiles.get(survivor.id)
        if refreshed is not None:
            found[refreshed.id] = refreshed
    return list(found.values())


async def merge_into(
    repos: Repositories,
    winner_id: str,
    loser_id: str,
    rules: IdentifyRules,
    by: Principal,
    reason: str,
    now: datetime,
    *,
    observer: ProfileObserver = UNOBSERVED,
) -> None:
    """Fold ``loser_id`` into ``winner_id``; every step is idempotent."""
    loser = await _mark(repos, loser_id, winner_id, now)
    before = await _absorb(repos, winner_id, loser_id, rules, now, observer)
    for identity in loser.identities:
        await repos.identity_keys.repoint(identity.key, loser_id, winner_id)
    winner = await repos.profiles.get(winner_id)
    if winner is not None:  # the keys just repointed carry the winner's checkout payload again
        await repos.profiles.carry_checkout(winner)
    await repos.merges.record(
        loser=loser_id,
        winner=winner_id,
        at=now,
        by=by.name,
        reason=reason,
        identities=[identity.key for identity in loser.identities],
        before=before,
    )


async def _mark(repos: Repositories, loser_id: str, winner_id: str, now: datetime) -> Profile:
    for _ in range(MAX_ATTEMPTS):
        loser = await repos.profiles.get(loser_id)
        if loser is None:
            raise InvalidInput("profileId", f"no profile {loser_id}")
        if loser.merged_into == winner_id:
            return loser
        if loser.merged_into is not None:
            raise InvalidInput("profileId", f"profile {loser_id} was merged into {loser.merged_into} already")
        marked = loser.model_copy(
            update={"merged_into": winner_id, "version": loser.version + 1, "updated_at": now}
        )
        if await repos.profiles.replace_fields(marked, expected_version=loser.version):
            return marked
    raise ConcurrentModification(loser_id)


async def _taken_in(repos: Repositories, winner: Profile, loser_id: str) -> bool:
    """``mergedFrom`` keeps the last merges only; the merge log knows the older ones."""
    return loser_id in winner.merged_from or await repos.merges.recorded(loser_id, winner.id)


async def _absorb(
    repos: Repositories,
    winner_id: str,
    loser_id: str,
    rules: IdentifyRules,
    now: datetime,
    observer: ProfileObserver,
) -> WinnerBefore | None:
    """What the winner held before it took the loser in; None when it had done so already
    (a merge resumed after a crash is logged without it: docs/merges.md)."""
    for _ in range(MAX_ATTEMPTS):
        winner, loser = await repos.profiles.get(winner_id), await repos.profiles.get(loser_id)
        if winner is None or loser is None:
            raise InvalidInput("profileId", f"a profile of the merge {loser_id} -> {winner_id} is gone")
        if await _taken_in(repos, winner, loser_id):
            return None
        merged = absorb(
            winner, loser, now=now, retention_days=rules.retention_days, limits=rules.profiles.trait_limits
        )
        if await repos.profiles.replace_fields(merged, expected_version=winner.version):
            await observer.merged(winner, merged, loser_id, now)
            return winner_before(winner, merged)
    raise ConcurrentModification(winner_id)

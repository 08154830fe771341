"""Creating and updating profiles: identities, traits (merge patch) and consents."""

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from profilegate.domain.consents import Consent, check_purpose, check_source
from profilegate.domain.errors import (
    ConflictingIdentity,
    DomainError,
    IdentityConflict,
    InvalidInput,
    ProfileNotFound,
)
from profilegate.domain.identities import Identity
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.traits import TraitLimits, merge_patch, validate_traits
from profilegate.service.observers import UNOBSERVED, ProfileObserver
from profilegate.service.resolve import find_profile
from profilegate.service.tombstones import refuse_erased_id, refuse_erased_identities
from profilegate.storage.store import Repositories

MAX_ATTEMPTS = 5
# A key whose profile does not exist this long after it was claimed was left by a writer
# that died between claiming the key and writing the profile; it may be taken over.
ORPHAN_GRACE = timedelta(seconds=60)
# Writers that lost a race wait a random, growing while before retrying, so that a burst of
# writes to one profile spreads out instead of colliding again on every attempt.
RETRY_PAUSE_SECONDS = 0.01


class ConcurrentModification(DomainError):
    def __init__(self, profile: str) -> None:
        super().__init__(f"profile {profile} kept changing under this update; retry it")


@dataclass(frozen=True)
class ProfileRules:
    trait_limits: TraitLimits
    max_identities: int
    consent_purposes: tuple[str, ...]


@dataclass(frozen=True)
class ConsentChange:
    purpose: str
    granted: bool
    source: str


@dataclass(frozen=True)
class ProfileChange:
    """What ``upsertProfile`` asks for. ``traits`` is a merge patch: ``None`` values remove keys."""

    ref: ProfileRef | None = None
    identities: tuple[Identity, ...] = ()
    traits: dict[str, Any] = field(default_factory=dict)
    consents: tuple[ConsentChange, ...] = ()


@dataclass(frozen=True)
class Upserted:
    profile: Profile
    created: bool


def new_profile_id() -> str:
    return uuid.uuid4().hex


async def upsert_profile(
    repos: Repositories,
    change: ProfileChange,
    rules: ProfileRules,
    now: datetime,
    *,
    observer: ProfileObserver = UNOBSERVED,
) -> Upserted:
    """Create the profile ``change.ref`` names (or a new one), or update it in one atomic write."""
    for index, consent in enumerate(change.consents):
        check_purpose(consent.purpose, rules.consent_purposes, f"consents[{index}].purpose")
        check_source(consent.source, f"consents[{index}].source")
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await pause_before_retry(attempt)
        existing = None if change.ref is None else await find_profile(repos, change.ref)
        if existing is None and change.ref is not None and change.ref.id is not None:
            await refuse_erased_id(repos, change.ref.id)
            raise ProfileNotFound(change.ref.describe())
        if existing is None:
            outcome = await _create(repos, change, rules, now)
        else:
            outcome = await _update(repos, existing, change, rules, now)
        if outcome is not None:
            if outcome.profile is not existing:
                await observer.changed(existing, outcome.profile, now)
            return outcome
    raise ConcurrentModification(change.ref.describe() if change.ref else "new")


async def pause_before_retry(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, RETRY_PAUSE_SECONDS * 2**attempt))


async def _create(
    repos: Repositories, change: ProfileChange, rules: ProfileRules, now: datetime
) -> Upserted | None:
    wanted = _unique((change.ref.identity,) if change.ref and change.ref.identity else ())
    identities = _unique(wanted + change.identities)
    _check_identity_count(len(identities), rules)
    await refuse_erased_identities(repos, identities, change.ref)
    traits = merge_patch({}, change.traits)
    validate_traits(traits, rules.trait_limits)
    profile = Profile(
        id=new_profile_id(),
        identities=identities,
        traits=traits,
        consents=_apply_consents({}, change.consents, now),
        created_at=now,
        updated_at=now,
    )
    claimed: list[str] = []
    for identity in identities:
        owner = await claim_identity(repos, identity, profile.id, now, carrying=profile)
        if owner != profile.id:
            await _release(repos, claimed, profile.id)
            if identity in wanted:
                return None  # created concurrently under this identity: update it instead
            raise IdentityConflict(ConflictingIdentity(identity.key, owner))
        claimed.append(identity.key)
    await repos.profiles.insert(profile)
    return Upserted(profile, created=True)


async def _update(
    repos: Repositories,
    existing: Profile,
    change: ProfileChange,
    rules: ProfileRules,
    now: datetime,
) -> Upserted | None:
    added = tuple(i for i in _unique(change.identities) if not existing.has_identity(i))
    _check_identity_count(len(existing.identities) + len(added), rules)
    traits = merge_patch(existing.traits, change.traits)
    validate_traits(traits, rules.trait_limits)
    consents = _apply_consents(existing.consents, change.consents, now)
    if not added and traits == existing.traits and consents == existing.consents:
        return Upserted(existing, created=False)
    await refuse_erased_identities(repos, added)
    claimed: list[str] = []
    for identity in added:
        owner = await claim_identity(repos, identity, existing.id, now)
        if owner != existing.id:
            await _release(repos, claimed, existing.id)
            raise IdentityConflict(ConflictingIdentity(identity.key, owner))
        claimed.append(identity.key)
    updated = existing.model_copy(
        update={
            "identities": existing.identities + added,
            "traits": traits,
            "consents": consents,
            "version": existing.version + 1,
            "updated_at": now,
        }
    )
    if not await repos.profiles.replace_fields(updated, expected_version=existing.version, previous=existing):
        return None  # another writer won; the claims stay ours and the retry reuses them
    return Upserted(updated, created=False)


async def claim_identity(
    repos: Repositories,
    identity: Identity,
    profile_id: str,
    now: datetime,
    *,
    carrying: Profile | None = None,
) -> str:
    """Claim ``identity`` for ``profile_id``; return whoever owns it afterwards. ``carrying``: the
    profile about to be created, whose checkout payload the key starts with."""
    owner = await repos.identity_keys.claim(identity.key, profile_id, now, carrying=carrying)
    if owner == profile_id:
        return owner
    survivor = await find_profile(repos, ProfileRef(id=owner))
    if survivor is not None:
        # A key still naming a profile merged into ``profile_id`` is already ours.
        return profile_id if survivor.id == profile_id else owner
    claimed_at = await repos.identity_keys.claimed_at(identity.key)
    orphaned = claimed_at is not None and claimed_at < now - ORPHAN_GRACE
    if orphaned and await repos.identity_keys.take_over(identity.key, owner, profile_id, now):
        return profile_id
    return owner


async def _release(repos: Repositories, keys: list[str], profile_id: str) -> None:
    for key in keys:
        await repos.identity_keys.release(key, profile_id)


def _apply_consents(
    current: dict[str, Consent], changes: tuple[ConsentChange, ...], now: datetime
) -> dict[str, Consent]:
    consents = dict(current)
    for change in changes:
        previous = consents.get(change.purpose)
        if previous is not None and (previous.granted, previous.source) == (
            change.granted,
            change.source,
        ):
            continue  # the same answer again changes nothing, not even the time
        consents[change.purpose] = Consent(
            purpose=change.purpose, granted=change.granted, at=now, source=change.source
        )
    return consents


def _check_identity_count(count: int, rules: ProfileRules) -> None:
    if count > rules.max_identities:
        raise InvalidInput("identities", f"a profile holds at most {rules.max_identities} identities")


def _unique(identities: tuple[Identity, ...]) -> tuple[Identity, ...]:
    return tuple(dict.fromkeys(identities))

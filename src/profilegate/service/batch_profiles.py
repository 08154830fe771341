"""The profiles a tracked batch is for, found (or made) for the whole batch at once.

One read of the identity keys and one of the profiles answer every reference of the batch
(one read in all, tombstones included, where the store can join them:
``IdentityKeyRepository.lookup``);
the identities no one holds yet are asked of the tombstones in one read and claimed in one
insert. A reference that needs more (a merged profile, an unknown id, a key whose profile is
missing, a claim lost to a racing writer) takes the one-profile path of ``profiles``.

A profile made here is stored empty right after its key is claimed (one insert per
partition), before any of its events is logged, like the one-profile path.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from profilegate.domain.erasure import PersonErased, tombstone_id
from profilegate.domain.errors import DomainError
from profilegate.domain.identities import Identity
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.service.observers import ProfileObserver
from profilegate.service.profiles import ProfileChange, ProfileRules, new_profile_id, upsert_profile
from profilegate.service.resolve import find_profile
from profilegate.storage.store import Repositories


@dataclass
class Found:
    """What each reference of the batch names: a stored profile, one made for it by this batch
    (``fresh``), or why it names none (``refused``)."""

    stored: dict[ProfileRef, Profile] = field(default_factory=dict)
    fresh: dict[ProfileRef, Profile] = field(default_factory=dict)
    refused: dict[ProfileRef, DomainError] = field(default_factory=dict)


async def profiles_of_batch(
    repos: Repositories,
    refs: Sequence[ProfileRef],
    rules: ProfileRules,
    now: datetime,
    observer: ProfileObserver,
) -> Found:
    found = Found()
    keys = [ref.identity.key for ref in refs if ref.identity is not None]
    # The tombstones are asked for every key (a known customer has none): where the store joins
    # them in, that costs no round trip, and spares one when a key turns out new.
    owners, stored, buried = await repos.identity_keys.lookup(keys, [tombstone_id(key) for key in keys])
    ids = {ref: ref.id if ref.identity is None else owners.get(ref.identity.key) for ref in refs}
    stored |= await repos.profiles.get_many(
        profile_id for profile_id in ids.values() if profile_id is not None and profile_id not in stored
    )
    unclaimed: list[ProfileRef] = []
    slow: list[ProfileRef] = []
    for ref, profile_id in ids.items():
        profile = None if profile_id is None else stored.get(profile_id)
        if profile is not None and profile.merged_into is None:
            found.stored[ref] = profile
        elif profile_id is None:
            unclaimed.append(ref)
        else:
            slow.append(ref)
    slow += await _make_new(repos, unclaimed, buried, now, found)
    for ref in slow:
        await _one_by_one(repos, ref, rules, now, observer, found)
    return found


async def _make_new(
    repos: Repositories, refs: list[ProfileRef], buried: set[str] | None, now: datetime, found: Found
) -> list[ProfileRef]:
    """Make a profile for each identity no one holds, unless erased; the refs whose claim was lost."""
    if not refs:
        return []
    identities = {ref: _identity(ref) for ref in refs}
    erased = buried
    if erased is None:
        erased = await repos.tombstones.buried(tombstone_id(identity.key) for identity in identities.values())
    made: dict[ProfileRef, Profile] = {}
    for ref, identity in identities.items():
        if tombstone_id(identity.key) in erased:
            found.refused[ref] = PersonErased("ref")
        else:
            made[ref] = _new_profile(identity, now)
    claimed = await repos.identity_keys.claim_new(
        [(_identity(ref).key, profile) for ref, profile in made.items()], now
    )
    lost = [ref for ref in made if _identity(ref).key not in claimed]
    fresh = {ref: profile for ref, profile in made.items() if ref not in lost}
    # Stored at once, as the one-profile path does: a racing batch that finds the key finds
    # its profile too, and every event is logged for a profile that exists.
    await repos.profiles.insert_tracked(list(fresh.values()))
    found.fresh.update(fresh)
    return lost


async def _one_by_one(
    repos: Repositories,
    ref: ProfileRef,
    rules: ProfileRules,
    now: datetime,
    observer: ProfileObserver,
    found: Found,
) -> None:
    try:
        profile = await find_profile(repos, ref)
        if profile is None:
            profile = (
                await upsert_profile(repos, ProfileChange(ref=ref), rules, now, observer=observer)
            ).profile
    except DomainError as error:
        found.refused[ref] = error
        return
    found.stored[ref] = profile


def _identity(ref: ProfileRef) -> Identity:
    assert ref.identity is not None, "only a reference by identity names a profile to be made"
    return ref.identity


def _new_profile(identity: Identity, now: datetime) -> Profile:
    """What ``upsert_profile`` makes for a reference by identity alone."""
    return Profile(id=new_profile_id(), identities=(identity,), created_at=now, updated_at=now)

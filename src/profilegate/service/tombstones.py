"""Asking the tombstones before a person would be (re)created: an erased person stays erased.

Each question is one read by ``_id`` per identity; see ``storage.tombstones`` for its cost on
the embedded store, where a lookup that misses scans its partition.
"""

from collections.abc import Iterable

from profilegate.domain.erasure import PersonErased, Tombstone, profile_key, tombstone_id
from profilegate.domain.identities import Identity
from profilegate.domain.refs import ProfileRef
from profilegate.storage.store import Repositories


async def tombstone_for(repos: Repositories, ref: ProfileRef) -> Tombstone | None:
    key = ref.identity.key if ref.identity is not None else profile_key(str(ref.id))
    return await repos.tombstones.find(tombstone_id(key))


async def refuse_erased_id(repos: Repositories, profile_id: str, field: str = "ref") -> None:
    if await repos.tombstones.find(tombstone_id(profile_key(profile_id))) is not None:
        raise PersonErased(field)


async def refuse_erased_identities(
    repos: Repositories, identities: Iterable[Identity], ref: ProfileRef | None = None
) -> None:
    """Raise :class:`PersonErased` for the first identity with a tombstone, naming the field
    (``ref`` when it is the identity the profile is addressed by, ``identities`` otherwise)."""
    for identity in identities:
        if await repos.tombstones.find(tombstone_id(identity.key)) is not None:
            addressed = ref is not None and ref.identity == identity
            raise PersonErased("ref" if addressed else "identities")

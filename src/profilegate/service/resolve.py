"""Finding the profile a ``ProfileRef`` names, following merges to the surviving profile."""

from collections.abc import Awaitable, Callable
from typing import Protocol

from profilegate.domain.errors import ProfileNotFound
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.storage.profiles import LoyaltyView
from profilegate.storage.store import Repositories

MAX_MERGE_HOPS = 16


class Merged(Protocol):
    @property
    def merged_into(self) -> str | None: ...


async def find_profile(repos: Repositories, ref: ProfileRef) -> Profile | None:
    """The profile ``ref`` names, or None. An identity costs one ``_id`` read more than an id;
    a profile merged into another answers with the one it was merged into."""
    found, _ = await resolve_chain(repos, ref)
    return found


async def resolve_chain(repos: Repositories, ref: ProfileRef) -> tuple[Profile | None, list[Profile]]:
    """The surviving profile, and the merged-away profiles passed on the way to it."""
    return await _follow(ref, await _first_id(repos, ref), repos.profiles.get)


async def find_loyalty_view(repos: Repositories, ref: ProfileRef) -> LoyaltyView | None:
    """What a tier needs of the profile ``ref`` names: the checkout's lean read.

    By identity it is the one read of the identity's key, which carries the payload (a guest's
    read finds nothing); a key without a payload, or one naming a merged-away profile, goes on
    to the checkout documents by profile id."""
    if ref.identity is None:
        found, _ = await _follow(ref, ref.id, repos.profiles.loyalty_view)
        return found
    carried = await repos.profiles.checkout_by_identity(ref.identity.key)
    if carried is None:
        return None
    owner, view = carried
    if view is not None and view.merged_into is None:
        return view
    found, _ = await _follow(ref, owner if view is None else view.merged_into, repos.profiles.loyalty_view)
    return found


async def require_profile(repos: Repositories, ref: ProfileRef) -> Profile:
    profile = await find_profile(repos, ref)
    if profile is None:
        raise ProfileNotFound(ref.describe())
    return profile


async def _first_id(repos: Repositories, ref: ProfileRef) -> str | None:
    if ref.id is not None:
        return ref.id
    assert ref.identity is not None, "a ProfileRef names an id or an identity"
    return await repos.identity_keys.owner(ref.identity.key)


async def _follow[T: Merged](
    ref: ProfileRef, profile_id: str | None, read: Callable[[str], Awaitable[T | None]]
) -> tuple[T | None, list[T]]:
    passed: list[T] = []
    for _ in range(MAX_MERGE_HOPS):
        if profile_id is None:
            return None, passed
        found = await read(profile_id)
        if found is None or found.merged_into is None:
            return found, passed
        passed.append(found)
        profile_id = found.merged_into
    raise RuntimeError(f"merge pointers from {ref.describe()} go deeper than {MAX_MERGE_HOPS}")

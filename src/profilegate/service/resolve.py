"""Finding the profile a ``ProfileRef`` names."""

from profilegate.domain.errors import ProfileNotFound
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.storage.store import Repositories


async def find_profile(repos: Repositories, ref: ProfileRef) -> Profile | None:
    """The profile ``ref`` names, or None. An identity costs one ``_id`` read more than an id."""
    if ref.id is not None:
        return await repos.profiles.get(ref.id)
    assert ref.identity is not None, "a ProfileRef names an id or an identity"
    owner = await repos.identity_keys.owner(ref.identity.key)
    return None if owner is None else await repos.profiles.get(owner)


async def require_profile(repos: Repositories, ref: ProfileRef) -> Profile:
    profile = await find_profile(repos, ref)
    if profile is None:
        raise ProfileNotFound(ref.describe())
    return profile

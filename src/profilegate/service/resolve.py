"""Finding the profile a ``ProfileRef`` names, following merges to the surviving profile."""

from profilegate.domain.errors import ProfileNotFound
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.storage.store import Repositories

MAX_MERGE_HOPS = 16


async def find_profile(repos: Repositories, ref: ProfileRef) -> Profile | None:
    """The profile ``ref`` names, or None. An identity costs one ``_id`` read more than an id;
    a profile merged into another answers with the one it was merged into."""
    found, _ = await resolve_chain(repos, ref)
    return found


async def resolve_chain(repos: Repositories, ref: ProfileRef) -> tuple[Profile | None, list[Profile]]:
    """The surviving profile, and the merged-away profiles passed on the way to it."""
    if ref.id is not None:
        profile_id: str | None = ref.id
    else:
        assert ref.identity is not None, "a ProfileRef names an id or an identity"
        profile_id = await repos.identity_keys.owner(ref.identity.key)
    passed: list[Profile] = []
    for _ in range(MAX_MERGE_HOPS):
        if profile_id is None:
            return None, passed
        profile = await repos.profiles.get(profile_id)
        if profile is None or profile.merged_into is None:
            return profile, passed
        passed.append(profile)
        profile_id = profile.merged_into
    raise RuntimeError(f"merge pointers from {ref.describe()} go deeper than {MAX_MERGE_HOPS}")


async def require_profile(repos: Repositories, ref: ProfileRef) -> Profile:
    profile = await find_profile(repos, ref)
    if profile is None:
        raise ProfileNotFound(ref.describe())
    return profile

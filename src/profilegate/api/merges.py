"""Merges an admin makes and undoes: ``mergeProfiles`` and ``unmergeProfiles`` (docs/merges.md)."""

from typing import Annotated

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import (
    ConcurrentModificationError,
    InvalidInputError,
    MergeBlockedError,
    NotPermittedError,
    ProfileNotFoundError,
    UnmergeOutOfOrderError,
    error_result,
)
from profilegate.api.permissions import ADMIN
from profilegate.api.types import ProfileRefInput, ProfileType
from profilegate.domain.errors import DomainError
from profilegate.service.merges import merge_profiles, unmerge


@strawberry.type(description="The profile `mergedProfileId` was merged into `profile`.")
class ProfilesMerged:
    profile: ProfileType
    merged_profile_id: strawberry.ID


@strawberry.type(
    description="A merge was undone: `profile` is the profile it was made into, without the other; "
    "`restored` is the profile merged away, on its own again."
)
class ProfilesUnmerged:
    profile: ProfileType
    restored: ProfileType


MergeProfilesResult = Annotated[
    ProfilesMerged
    | InvalidInputError
    | ProfileNotFoundError
    | MergeBlockedError
    | NotPermittedError
    | ConcurrentModificationError,
    strawberry.union("MergeProfilesResult"),
]
UnmergeProfilesResult = Annotated[
    ProfilesUnmerged
    | InvalidInputError
    | ProfileNotFoundError
    | UnmergeOutOfOrderError
    | NotPermittedError
    | ConcurrentModificationError,
    strawberry.union("UnmergeProfilesResult"),
]


@strawberry.type
class MergeMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Merge the profile `from` names into the one `into` names (it wins, whatever the "
        "ages), also when they hold different customer ids; blocked identifiers and the identity cap "
        "still keep profiles apart.",
    )
    async def merge_profiles(
        self,
        info: Info,
        into: ProfileRefInput,
        from_: Annotated[ProfileRefInput, strawberry.argument(name="from")],
        reason: str,
    ) -> MergeProfilesResult:
        context = info.context
        try:
            merged = await merge_profiles(
                context.repos,
                into.to_domain(context.phone_region, "into"),
                from_.to_domain(context.phone_region, "from"),
                context.identify,
                context.principal,
                reason,
                context.now,
                observer=context.feed,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ProfilesMerged(
            profile=ProfileType.from_domain(merged.profile),
            merged_profile_id=strawberry.ID(merged.merged_profile_id),
        )

    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Undo the merge that folded `profileId` into another profile: each gets its own "
        "identities, traits, consents, extensions and events back (docs/merges.md). A chain of "
        "merges is undone one step at a time, the newest first.",
    )
    async def unmerge_profiles(
        self, info: Info, profile_id: strawberry.ID, reason: str
    ) -> UnmergeProfilesResult:
        context = info.context
        try:
            done = await unmerge(
                context.repos,
                str(profile_id),
                context.identify,
                context.principal,
                reason,
                context.now,
                observer=context.feed,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ProfilesUnmerged(
            profile=ProfileType.from_domain(done.profile), restored=ProfileType.from_domain(done.restored)
        )

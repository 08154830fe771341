"""GDPR over GraphQL (admins): ``exportProfile`` and ``eraseProfile``."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from profilegate.api.context import Info
from profilegate.api.errors import InvalidInputError, ProfileNotFoundError, error_result
from profilegate.api.permissions import ADMIN
from profilegate.api.types import ProfileRefInput
from profilegate.domain.errors import DomainError
from profilegate.service.gdpr import Erased, erase_profile, export_profile


@strawberry.type(description="Everything held about a person, as one JSON document.")
class ProfileExport:
    profile_id: strawberry.ID
    document: JSON = strawberry.field(
        description="profile, mergedProfileIds, mergedProfiles, events, merges, changes, exportedAt."
    )


@strawberry.type(description="The person is erased; the counts say what this call removed.")
class ProfileErased:
    profile_id: strawberry.ID | None = strawberry.field(
        description="The erased profile; null when asked again by an identity (only its hash is kept)."
    )
    erased_at: datetime
    already_erased: bool = strawberry.field(description="Erased before: nothing was left to remove.")
    profiles: int
    identities: int
    events: int
    merges: int
    changes: int = strawberry.field(description="Change-feed entries whose payloads were emptied.")

    @classmethod
    def from_domain(cls, erased: Erased) -> "ProfileErased":
        return cls(
            profile_id=None if erased.profile_id is None else strawberry.ID(erased.profile_id),
            erased_at=erased.erased_at,
            already_erased=erased.already_erased,
            profiles=erased.profiles,
            identities=erased.identities,
            events=erased.events,
            merges=erased.merges,
            changes=erased.changes,
        )


ExportProfileResult = Annotated[
    ProfileExport | InvalidInputError | ProfileNotFoundError, strawberry.union("ExportProfileResult")
]
EraseProfileResult = Annotated[
    ProfileErased | InvalidInputError | ProfileNotFoundError, strawberry.union("EraseProfileResult")
]


@strawberry.type
class GdprQueries:
    @strawberry.field(
        permission_classes=[ADMIN],
        description="Everything held about a person (GDPR art. 15): the profile, the profiles merged "
        "into it, events, merges and change-feed entries.",
    )
    async def export_profile(self, info: Info, ref: ProfileRefInput) -> ExportProfileResult:
        context = info.context
        try:
            document = await export_profile(
                context.repos,
                ref.to_domain(context.phone_region),
                context.now,
                context.tracking.events.currencies,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ProfileExport(profile_id=strawberry.ID(document["profileId"]), document=JSON(document))


@strawberry.type
class GdprMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Erase a person (GDPR art. 17): the profile, the profiles merged into it, their "
        "events, merges and identity keys; change-feed payloads are emptied; tombstones keep the "
        "person from being recreated. Erasing again answers `alreadyErased`.",
    )
    async def erase_profile(self, info: Info, ref: ProfileRefInput, reason: str) -> EraseProfileResult:
        context = info.context
        try:
            erased = await erase_profile(
                context.repos, ref.to_domain(context.phone_region), reason, context.now, observer=context.feed
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ProfileErased.from_domain(erased)

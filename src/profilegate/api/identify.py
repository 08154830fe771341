"""Identity resolution over GraphQL: ``identify``, and the merge log for admins."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from profilegate.api.context import Context, Info
from profilegate.api.errors import (
    ConcurrentModificationError,
    IdentityConflictError,
    InvalidInputError,
    MergeBlockedError,
    NotPermittedError,
    bad_input,
    error_result,
)
from profilegate.api.permissions import ADMIN, allow
from profilegate.api.types import IdentityInput, ProfileRefInput, ProfileType
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.identities import Identity
from profilegate.domain.identities import anonymous_id as visitor_id
from profilegate.domain.keys import Role
from profilegate.domain.storefront import Missing, ShopperNotProven
from profilegate.service.identify import identify
from profilegate.service.resolve import find_profile

IDENTIFIERS = allow(Role.ADMIN, Role.INGEST, Role.STOREFRONT)
MAX_IDENTITIES_PER_CALL = 20
MAX_MERGES_LISTED = 100


@strawberry.type
class Identified:
    profile: ProfileType
    created: bool
    merged_profile_ids: list[strawberry.ID] = strawberry.field(
        description="Profiles merged into `profile` by this call (now pointing to it)."
    )


@strawberry.type(name="Merge", description="One profile folded into another.")
class MergeType:
    loser: strawberry.ID
    winner: strawberry.ID
    at: datetime
    by: str
    reason: str
    identities: list[str]


IdentifyResult = Annotated[
    Identified
    | InvalidInputError
    | IdentityConflictError
    | MergeBlockedError
    | NotPermittedError
    | ConcurrentModificationError,
    strawberry.union("IdentifyResult"),
]


@strawberry.type
class IdentifyMutations:
    @strawberry.mutation(
        permission_classes=[IDENTIFIERS],
        description="Link an anonymous visitor and/or identities to one profile, merging the profiles they "
        "named: the oldest wins, the others point to it.",
    )
    async def identify(
        self,
        info: Info,
        identities: list[IdentityInput],
        anonymous_id: str | None = None,
        traits: JSON | None = None,
    ) -> IdentifyResult:
        context = info.context
        try:
            if len(identities) > MAX_IDENTITIES_PER_CALL:
                limit = f"holds more than the limit of {MAX_IDENTITIES_PER_CALL} per call"
                raise InvalidInput("identities", limit)
            if traits is not None and not isinstance(traits, dict):
                raise InvalidInput("traits", 'must be a JSON object, e.g. {"city": "Berlin"}')
            anonymous = None if anonymous_id is None else visitor_id(anonymous_id)
            known = tuple(
                identity.to_domain(f"identities[{index}]", context.phone_region)
                for index, identity in enumerate(identities)
            )
            _check_storefront(context, anonymous, known, traits)
            done = await identify(
                context.repos,
                anonymous,
                known,
                traits or {},
                context.identify,
                context.principal,
                context.now,
                observer=context.feed,
                may_merge_known=not context.storefront_caller,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return Identified(
            profile=ProfileType.from_domain(done.profile),
            created=done.created,
            merged_profile_ids=[strawberry.ID(i) for i in done.merged],
        )


def _check_storefront(
    context: Context, anonymous: Identity | None, known: tuple[Identity, ...], traits: object
) -> None:
    """A storefront key links its own visitor to the shopper its proof names, nothing more."""
    if anonymous is not None:
        context.reach_anonymous_id(anonymous.value, "anonymousId")
    for index, identity in enumerate(known):
        context.reach_identity(identity, f"identities[{index}]")
    if context.storefront_caller and traits is not None:
        raise ShopperNotProven(
            "traits: a storefront key may not write traits; the shop's back end sends them "
            "(upsertProfile with an ingest key)",
            Missing.SERVER_ONLY,
        )


@strawberry.type
class IdentifyQueries:
    @strawberry.field(permission_classes=[ADMIN], description="Profiles merged into this one, newest first.")
    async def merges(self, info: Info, ref: ProfileRefInput, first: int = 20) -> list[MergeType]:
        if not 1 <= first <= MAX_MERGES_LISTED:
            raise bad_input(InvalidInput("first", f"must be between 1 and {MAX_MERGES_LISTED}"))
        try:
            profile = await find_profile(info.context.repos, ref.to_domain(info.context.phone_region))
        except InvalidInput as error:
            raise bad_input(error) from error
        if profile is None:
            return []
        records = await info.context.repos.merges.into(profile.id, first)
        return [
            MergeType(
                loser=strawberry.ID(r["_id"]),
                winner=strawberry.ID(r["winner"]),
                at=r["at"],
                by=r["by"],
                reason=r["reason"],
                identities=r["identities"],
            )
            for r in records
        ]

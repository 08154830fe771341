"""Profile queries and mutations: read, upsert (traits as merge patch, identities) and consent."""

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from profilegate.api.context import Info
from profilegate.api.errors import (
    ConcurrentModificationError,
    IdentityConflictError,
    InvalidInputError,
    NotPermittedError,
    ProfileNotFoundError,
    bad_input,
    error_result,
)
from profilegate.api.permissions import allow
from profilegate.api.storefront import not_permitted
from profilegate.api.types import IdentityInput, ProfileRefInput, ProfileType
from profilegate.domain.consents import check_purpose, check_source
from profilegate.domain.errors import DomainError, InvalidInput, NotPermitted
from profilegate.domain.keys import Role
from profilegate.service.profiles import ConsentChange, ProfileChange, upsert_profile
from profilegate.service.resolve import find_profile

PROFILE_READERS = allow(Role.ADMIN, Role.STOREFRONT, Role.PARTNER)
PROFILE_WRITERS = allow(Role.ADMIN, Role.INGEST)
CONSENT_WRITERS = allow(Role.ADMIN, Role.INGEST, Role.STOREFRONT)
MAX_IDENTITIES_PER_INPUT = 20
MAX_CONSENTS_PER_INPUT = 20


@strawberry.input(description="One purpose's answer, as the person gave it.")
class ConsentInput:
    purpose: str
    granted: bool
    source: str = strawberry.field(description="Where the answer was given, e.g. `cookie-banner`.")


@strawberry.input
class UpsertProfileInput:
    ref: ProfileRefInput | None = strawberry.field(
        default=None,
        description="The profile to update. An unknown identity creates it; none creates a new one.",
    )
    identities: list[IdentityInput] = strawberry.field(
        default_factory=list, description="Identities to add; each must not name another profile."
    )
    traits: JSON | None = strawberry.field(
        default=None, description="A JSON merge patch (RFC 7386): keys set, `null` removes a key."
    )
    consents: list[ConsentInput] = strawberry.field(default_factory=list)


@strawberry.type
class ProfileUpserted:
    profile: ProfileType
    created: bool


@strawberry.type
class ConsentSet:
    profile: ProfileType


UpsertProfileResult = Annotated[
    ProfileUpserted
    | InvalidInputError
    | IdentityConflictError
    | ProfileNotFoundError
    | ConcurrentModificationError,
    strawberry.union("UpsertProfileResult"),
]
SetConsentResult = Annotated[
    ConsentSet | InvalidInputError | NotPermittedError | ProfileNotFoundError | ConcurrentModificationError,
    strawberry.union("SetConsentResult"),
]


@strawberry.type
class ProfileQueries:
    @strawberry.field(permission_classes=[PROFILE_READERS], description="Null when unknown.")
    async def profile(self, info: Info, ref: ProfileRefInput) -> ProfileType | None:
        try:
            domain_ref = ref.to_domain(info.context.phone_region)
            info.context.reach(domain_ref)
        except InvalidInput as error:
            raise bad_input(error) from error
        except NotPermitted as error:
            raise not_permitted(error) from error
        found = await find_profile(info.context.repos, domain_ref)
        return None if found is None else ProfileType.from_domain(found)

    @strawberry.field(description="The consent purposes this gateway knows.")
    def consent_purposes(self, info: Info) -> list[str]:
        return list(info.context.rules.consent_purposes)


@strawberry.type
class ProfileMutations:
    @strawberry.mutation(permission_classes=[PROFILE_WRITERS])
    async def upsert_profile(self, info: Info, input: UpsertProfileInput) -> UpsertProfileResult:
        context = info.context
        try:
            change = _profile_change(input, context.phone_region)
            upserted = await upsert_profile(
                context.repos, change, context.rules, context.now, observer=context.feed
            )
        except InvalidInput as error:  # its paths start inside the input
            return error_result(error.under("input"))  # type: ignore[return-value]  # one of the union's members
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ProfileUpserted(profile=ProfileType.from_domain(upserted.profile), created=upserted.created)

    @strawberry.mutation(
        permission_classes=[CONSENT_WRITERS],
        description="Record a consent answer; an unknown identity creates its profile.",
    )
    async def set_consent(self, info: Info, ref: ProfileRefInput, consent: ConsentInput) -> SetConsentResult:
        context = info.context
        try:
            domain_ref = ref.to_domain(context.phone_region)
            context.reach(domain_ref)
            check_purpose(consent.purpose, context.rules.consent_purposes, "consent.purpose")
            check_source(consent.source, "consent.source")
            change = ProfileChange(
                ref=domain_ref,
                consents=(ConsentChange(consent.purpose, consent.granted, consent.source),),
            )
            upserted = await upsert_profile(
                context.repos, change, context.rules, context.now, observer=context.feed
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ConsentSet(profile=ProfileType.from_domain(upserted.profile))


def _profile_change(input: UpsertProfileInput, phone_region: str) -> ProfileChange:
    if len(input.identities) > MAX_IDENTITIES_PER_INPUT:
        raise InvalidInput("identities", f"holds more than the limit of {MAX_IDENTITIES_PER_INPUT} per call")
    if len(input.consents) > MAX_CONSENTS_PER_INPUT:
        raise InvalidInput("consents", f"holds more than the limit of {MAX_CONSENTS_PER_INPUT} per call")
    if input.traits is not None and not isinstance(input.traits, dict):
        raise InvalidInput("traits", 'must be a JSON object, e.g. {"city": "Berlin"}')
    return ProfileChange(
        ref=None if input.ref is None else input.ref.to_domain(phone_region, "ref"),
        identities=tuple(
            identity.to_domain(f"identities[{index}]", phone_region)
            for index, identity in enumerate(input.identities)
        ),
        traits=input.traits or {},
        consents=tuple(ConsentChange(c.purpose, c.granted, c.source) for c in input.consents),
    )

"""The extension catalogue and setting or removing extensions on profiles."""

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import (
    ConcurrentModificationError,
    InvalidInputError,
    NotPermittedError,
    ProfileNotFoundError,
    UnknownExtensionError,
    error_result,
)
from profilegate.api.permissions import ADMIN, allow
from profilegate.api.types import ExtensionDefinitionType, ProfileRefInput, ProfileType
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.extensions import ExtensionDefinition
from profilegate.domain.keys import Role
from profilegate.service import extensions as service
from profilegate.storage.extension_definitions import DefineOutcome

EXTENSION_SETTERS = allow(Role.ADMIN, Role.PARTNER)


@strawberry.enum
class DefinitionOutcome(Enum):
    CREATED = DefineOutcome.CREATED
    UPDATED = DefineOutcome.UPDATED
    UNCHANGED = DefineOutcome.UNCHANGED


@strawberry.input
class DefineExtensionInput:
    name: str = strawberry.field(description="Lower-case letters, digits and '-'; e.g. `no-reward`.")
    description: str
    partner_settable: bool = False
    shown_to_shopper: bool = strawberry.field(
        default=False,
        description="A storefront key may show it to the shopper it is about (`no-reward`, `vip`); "
        "off for markers that are not the shopper's business (`employee`, `frequent-returner`).",
    )
    default_lifetime_days: int | None = strawberry.field(
        default=None, description="Expiry applied when a setter gives none; null: never expires."
    )


@strawberry.type
class ExtensionDefined:
    definition: ExtensionDefinitionType
    outcome: DefinitionOutcome


@strawberry.type
class ExtensionChanged:
    profile: ProfileType
    changed: bool = strawberry.field(description="False when the profile already was like this.")


DefineExtensionResult = Annotated[
    ExtensionDefined | InvalidInputError, strawberry.union("DefineExtensionResult")
]
ExtensionChangeResult = Annotated[
    ExtensionChanged
    | InvalidInputError
    | ProfileNotFoundError
    | UnknownExtensionError
    | NotPermittedError
    | ConcurrentModificationError,
    strawberry.union("ExtensionChangeResult"),
]


@strawberry.type
class ExtensionQueries:
    @strawberry.field(permission_classes=[allow(Role.ADMIN, Role.PARTNER)])
    async def extension_definitions(self, info: Info) -> list[ExtensionDefinitionType]:
        definitions = await info.context.repos.extension_definitions.all()
        return [ExtensionDefinitionType.from_domain(d) for d in definitions]


@strawberry.type
class ExtensionMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN], description="Create or replace; an identical one is a no-op."
    )
    async def define_extension(self, info: Info, input: DefineExtensionInput) -> DefineExtensionResult:
        try:
            definition = _definition(input)
            saved, outcome = await service.define_extension(info.context.repos, definition)
            info.context.storefront.forget_shown()
        except InvalidInput as error:  # its paths start inside the input
            return error_result(error.under("input"))  # type: ignore[return-value]  # one of the union's members
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ExtensionDefined(
            definition=ExtensionDefinitionType.from_domain(saved),
            outcome=DefinitionOutcome(outcome),
        )

    @strawberry.mutation(permission_classes=[EXTENSION_SETTERS])
    async def set_extension(
        self,
        info: Info,
        ref: ProfileRefInput,
        name: str,
        reason: str,
        expires_at: datetime | None = None,
    ) -> ExtensionChangeResult:
        context = info.context
        try:
            if expires_at is not None and expires_at.tzinfo is None:
                raise InvalidInput("expiresAt", "needs a time zone, e.g. 2027-01-31T23:59:59Z")
            changed = await service.set_extension(
                context.repos,
                ref.to_domain(context.phone_region),
                name,
                reason,
                expires_at,
                context.principal,
                context.now,
                observer=context.feed,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ExtensionChanged(profile=ProfileType.from_domain(changed.profile), changed=changed.changed)

    @strawberry.mutation(permission_classes=[EXTENSION_SETTERS])
    async def remove_extension(
        self, info: Info, ref: ProfileRefInput, name: str, reason: str
    ) -> ExtensionChangeResult:
        context = info.context
        try:
            changed = await service.remove_extension(
                context.repos,
                ref.to_domain(context.phone_region),
                name,
                reason,
                context.principal,
                context.now,
                observer=context.feed,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ExtensionChanged(profile=ProfileType.from_domain(changed.profile), changed=changed.changed)


def _definition(input: DefineExtensionInput) -> ExtensionDefinition:
    if len(input.description) > 1000:
        raise InvalidInput("description", "is longer than 1000 characters")
    lifetime = input.default_lifetime_days
    if lifetime is not None and not 1 <= lifetime <= 36_500:
        raise InvalidInput("defaultLifetimeDays", "must be between 1 and 36500")
    return ExtensionDefinition(
        name=input.name,
        description=input.description.strip(),
        partner_settable=input.partner_settable,
        shown_to_shopper=input.shown_to_shopper,
        default_lifetime_days=lifetime,
    )

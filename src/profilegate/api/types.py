"""GraphQL types, each built from its domain object by one constructor."""

from datetime import datetime
from typing import Self

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from profilegate.api import enums  # noqa: F401  (registers the domain enums with the schema first)
from profilegate.api.context import Info
from profilegate.api.metrics import ProfileMetricsType
from profilegate.api.permissions import ADMIN, allow
from profilegate.api.storefront import not_permitted
from profilegate.api.tier_types import LoyaltyObject
from profilegate.domain import identities
from profilegate.domain.changes import ChangeKind
from profilegate.domain.consents import Consent
from profilegate.domain.errors import NotPermitted
from profilegate.domain.extensions import ExtensionDefinition, ExtensionGrant
from profilegate.domain.identities import IdentityType
from profilegate.domain.keys import ApiKey, Principal, Role
from profilegate.domain.profiles import Profile
from profilegate.domain.refs import ProfileRef
from profilegate.domain.segment_predicate import Explanation
from profilegate.service.segments import explain_membership, memberships
from profilegate.service.tiers import profile_loyalty

ADMIN_OR_PARTNER = allow(Role.ADMIN, Role.PARTNER)
READERS = allow(Role.ADMIN, Role.PARTNER, Role.STOREFRONT)


@strawberry.input(description="An identity as the caller knows it; it is normalised on input.")
class IdentityInput:
    type: IdentityType
    value: str

    def to_domain(self, field: str, phone_region: str) -> identities.Identity:
        return identities.normalise_identity(self.type, self.value, field=field, phone_region=phone_region)


@strawberry.input(
    name="ProfileRef", one_of=True, description="Names one profile: by its id or by one identity."
)
class ProfileRefInput:
    id: strawberry.ID | None = strawberry.UNSET
    identity: IdentityInput | None = strawberry.UNSET

    def to_domain(self, phone_region: str, field: str = "ref") -> ProfileRef:
        if isinstance(self.identity, IdentityInput):
            return ProfileRef(identity=self.identity.to_domain(f"{field}.identity", phone_region))
        return ProfileRef(id=str(self.id))


@strawberry.type(name="Identity")
class IdentityObject:
    type: IdentityType
    value: str

    @classmethod
    def from_domain(cls, identity: identities.Identity) -> Self:
        return cls(type=identity.type, value=identity.value)


@strawberry.type(name="Consent", description="A person's answer for one purpose.")
class ConsentType:
    purpose: str
    granted: bool
    at: datetime
    source: str

    @classmethod
    def from_domain(cls, consent: Consent) -> Self:
        return cls(purpose=consent.purpose, granted=consent.granted, at=consent.at, source=consent.source)


@strawberry.type(name="Extension", description="An extension in force on a profile, with provenance.")
class ExtensionType:
    name: str
    at: datetime
    by: str = strawberry.field(description="The name of the API key that set it.")
    reason: str
    source: str = strawberry.field(description="`manual`, or `rule:<key>` when a rule set it.")
    expires_at: datetime | None

    @classmethod
    def from_domain(cls, grant: ExtensionGrant) -> Self:
        return cls(
            name=grant.name,
            at=grant.at,
            by=grant.by,
            reason=grant.reason,
            source=grant.source,
            expires_at=grant.expires_at,
        )


@strawberry.type(description="One setting or removal of an extension, newest last.")
class ExtensionLogEntry:
    action: str
    name: str
    reason: str
    by: str
    at: datetime


@strawberry.type(description="Which clauses of a segment's rule held for the profile, with the values seen.")
class SegmentExplanation:
    clause: str
    held: bool
    seen: str | None = strawberry.field(description="The profile's value for a leaf clause.")
    parts: list["SegmentExplanation"]

    @classmethod
    def from_domain(cls, explanation: Explanation) -> "SegmentExplanation":
        return cls(
            clause=explanation.clause,
            held=explanation.held,
            seen=explanation.seen,
            parts=[cls.from_domain(part) for part in explanation.parts],
        )


@strawberry.type(name="Profile", description="One shopper's profile.")
class ProfileType:
    domain: strawberry.Private[Profile]
    id: strawberry.ID
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, profile: Profile) -> Self:
        return cls(
            domain=profile,
            id=strawberry.ID(profile.id),
            version=profile.version,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
        )

    @strawberry.field(permission_classes=[ADMIN])
    def identities(self) -> list[IdentityObject]:
        return [IdentityObject.from_domain(identity) for identity in self.domain.identities]

    @strawberry.field(permission_classes=[ADMIN_OR_PARTNER], description="Free-form traits.")
    def traits(self) -> JSON:
        return JSON(self.domain.traits)

    @strawberry.field(permission_classes=[READERS])
    def consents(self) -> list[ConsentType]:
        return [ConsentType.from_domain(c) for _, c in sorted(self.domain.consents.items())]

    @strawberry.field(
        permission_classes=[READERS],
        description="Whether the person consented to this purpose (false when never asked).",
    )
    def consented(self, purpose: str) -> bool:
        consent = self.domain.consents.get(purpose)
        return consent is not None and consent.granted

    @strawberry.field(
        permission_classes=[ADMIN_OR_PARTNER],
        description="Extensions in force now, with provenance; expired ones are absent.",
    )
    def extensions(self, info: Info) -> list[ExtensionType]:
        active = self.domain.active_extensions(info.context.now)
        return [ExtensionType.from_domain(grant) for _, grant in sorted(active.items())]

    @strawberry.field(
        description="Names of the extensions in force now: the storefront's flags. A storefront key "
        "sees only those defined as shown to the shopper."
    )
    async def extension_names(self, info: Info) -> list[str]:
        active = self.domain.active_extensions(info.context.now)
        if info.context.storefront_caller:
            shown = await info.context.storefront.shown_extensions()
            return sorted(name for name in active if name in shown)
        return sorted(active)

    @strawberry.field(
        description="Whether the extension is in force now; a storefront key may ask only about "
        "extensions defined as shown to the shopper."
    )
    async def has_extension(self, info: Info, name: str) -> bool:
        if info.context.storefront_caller and name not in await info.context.storefront.shown_extensions():
            raise not_permitted(
                NotPermitted(
                    f"name: the extension {name!r} is not defined as shown to the shopper "
                    "(shownToShopper), so a storefront key may not ask about it"
                )
            )
        return name in self.domain.active_extensions(info.context.now)

    @strawberry.field(
        permission_classes=[ADMIN_OR_PARTNER], description="What the profile's events add up to."
    )
    def metrics(self) -> ProfileMetricsType:
        return ProfileMetricsType(aggregates=self.domain.aggregates)

    @strawberry.field(permission_classes=[READERS], description="The tier under the active policy, now.")
    async def loyalty(self, info: Info) -> LoyaltyObject:
        policy = await info.context.tier_policy.get()
        return LoyaltyObject.from_domain(profile_loyalty(self.domain, policy, info.context.now))

    @strawberry.field(
        permission_classes=[ADMIN_OR_PARTNER], description="Keys of the segments the profile is in now."
    )
    async def segments(self, info: Info) -> list[str]:
        return memberships(self.domain, await info.context.segments.all(), info.context.now)

    @strawberry.field(
        permission_classes=[ADMIN_OR_PARTNER], description="Whether the profile is in the segment now."
    )
    async def in_segment(self, info: Info, key: str) -> bool:
        segments = await info.context.segments.all()
        if not any(segment.key == key for segment in segments):
            raise GraphQLError(f"no segment {key!r}", extensions={"code": "BAD_USER_INPUT", "field": "key"})
        return key in memberships(self.domain, segments, info.context.now)

    @strawberry.field(
        permission_classes=[ADMIN_OR_PARTNER],
        description="Why the profile is in the segment or not; null: no such segment.",
    )
    async def explain_segment(self, info: Info, key: str) -> SegmentExplanation | None:
        context = info.context
        segments = await context.segments.all()
        segment = next((s for s in segments if s.key == key), None)
        if segment is None:
            return None
        currencies = context.tracking.events.currencies
        return SegmentExplanation.from_domain(
            explain_membership(self.domain, segment, segments, context.now, currencies)
        )

    @strawberry.field(permission_classes=[ADMIN], description="Profiles merged into this one.")
    def merged_from(self) -> list[strawberry.ID]:
        return [strawberry.ID(profile_id) for profile_id in self.domain.merged_from]

    @strawberry.field(permission_classes=[ADMIN], description="The latest settings and removals.")
    async def extension_log(self, info: Info) -> list[ExtensionLogEntry]:
        entries = await info.context.repos.profiles.extension_log(self.domain.id)
        return [
            ExtensionLogEntry(action=e["action"], name=e["name"], reason=e["reason"], by=e["by"], at=e["at"])
            for e in entries
        ]


@strawberry.type(name="ExtensionDefinition", description="An entry of the extension catalogue.")
class ExtensionDefinitionType:
    name: str
    description: str
    partner_settable: bool
    shown_to_shopper: bool = strawberry.field(description="A storefront key may show it to its shopper.")
    default_lifetime_days: int | None

    @classmethod
    def from_domain(cls, definition: ExtensionDefinition) -> Self:
        return cls(
            name=definition.name,
            description=definition.description,
            partner_settable=definition.partner_settable,
            shown_to_shopper=definition.shown_to_shopper,
            default_lifetime_days=definition.default_lifetime_days,
        )


@strawberry.type(name="ApiKey", description="A stored API key; its secret is never shown again.")
class ApiKeyType:
    id: strawberry.ID
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    change_kinds: list[ChangeKind] | None = strawberry.field(
        description="The change kinds a partner's feed holds; null for all."
    )
    fields: list[str] = strawberry.field(
        description="Personal fields a partner's feed shows: identities, traits, traits.<key>."
    )
    allowed_origins: list[str] = strawberry.field(
        description="Browser origins that may use the key (CORS); empty: none."
    )
    persisted_only: bool = strawberry.field(description="The key may run persisted operations only.")
    proof_algorithm: str | None = strawberry.field(
        description="How a storefront key's shopper proofs are signed: HS256 with its proof secret, "
        "or RS256, ES256 or EdDSA with the shop's key; null for other roles."
    )

    @classmethod
    def from_domain(cls, key: ApiKey) -> Self:
        return cls(
            id=strawberry.ID(key.id),
            name=key.name,
            role=key.role,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            change_kinds=None if key.change_kinds is None else list(key.change_kinds),
            fields=list(key.fields),
            allowed_origins=list(key.allowed_origins),
            persisted_only=key.persisted_only,
            proof_algorithm=key.proof_key.algorithm,
        )


@strawberry.type(name="Viewer", description="The caller, as its API key says.")
class ViewerType:
    name: str
    role: Role

    @classmethod
    def from_domain(cls, principal: Principal) -> Self:
        return cls(name=principal.name, role=principal.role)

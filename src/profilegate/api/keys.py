"""API keys over GraphQL (admins), and who the caller is (everyone)."""

from typing import Annotated

import strawberry

from profilegate.api import enums  # noqa: F401  (registers the domain enums with the schema first)
from profilegate.api.context import Info
from profilegate.api.errors import InvalidInputError, error_result
from profilegate.api.permissions import ADMIN, ANYONE
from profilegate.api.types import ApiKeyType, ViewerType
from profilegate.domain.changes import ChangeKind
from profilegate.domain.errors import DomainError
from profilegate.domain.keys import Role
from profilegate.service.keys import create_key


@strawberry.type
class ApiKeyCreated:
    key: ApiKeyType
    token: str = strawberry.field(description="The secret to send as `Bearer`; shown only now.")
    proof_secret: str | None = strawberry.field(
        description="A storefront key's HS256 secret for shopper proofs (null with a public key); "
        "shown only now. The shop's back end signs proofs with it (docs/access.md)."
    )


@strawberry.type
class ApiKeysRevoked:
    keys: list[ApiKeyType]


CreateApiKeyResult = Annotated[ApiKeyCreated | InvalidInputError, strawberry.union("CreateApiKeyResult")]


@strawberry.type
class KeyQueries:
    @strawberry.field(permission_classes=[ANYONE], description="The calling key's name and role.")
    def viewer(self, info: Info) -> ViewerType:
        return ViewerType.from_domain(info.context.principal)

    @strawberry.field(permission_classes=[ADMIN], description="Every key, revoked ones too.")
    async def api_keys(self, info: Info) -> list[ApiKeyType]:
        return [ApiKeyType.from_domain(k) for k in await info.context.repos.api_keys.all()]


@strawberry.type
class KeyMutations:
    @strawberry.mutation(permission_classes=[ADMIN])
    async def create_api_key(
        self,
        info: Info,
        name: str,
        role: Role,
        change_kinds: Annotated[
            list[ChangeKind] | None,
            strawberry.argument(description="Scope a partner's change feed to these kinds (default all)."),
        ] = None,
        fields: Annotated[
            list[str] | None,
            strawberry.argument(
                description=(
                    "Personal fields a partner's feed shows: identities, traits, traits.<key>; "
                    "shopMetrics lets a partner key read shopMetrics."
                )
            ),
        ] = None,
        allowed_origins: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Browser origins (scheme://host[:port]) that may use the key, at most 20."
            ),
        ] = None,
        persisted_only: Annotated[
            bool,
            strawberry.argument(description="The key may run persisted operations only (storefronts)."),
        ] = False,
        proof_public_key: Annotated[
            str | None,
            strawberry.argument(
                description="Storefront keys: the shop's public key (PEM: RSA, P-256 or Ed25519) that "
                "signs shopper proofs; without it the gateway makes an HS256 secret."
            ),
        ] = None,
    ) -> CreateApiKeyResult:
        try:
            created = await create_key(
                info.context.repos.api_keys,
                name,
                role,
                info.context.now,
                change_kinds=None if change_kinds is None else tuple(change_kinds),
                fields=tuple(fields or ()),
                allowed_origins=tuple(allowed_origins or ()),
                persisted_only=persisted_only,
                proof_public_key=proof_public_key,
            )
        except DomainError as error:
            return error_result(error)  # type: ignore[return-value]  # one of the union's members
        return ApiKeyCreated(
            key=ApiKeyType.from_domain(created.key),
            token=created.token,
            proof_secret=created.key.proof_secret,
        )

    @strawberry.mutation(
        permission_classes=[ADMIN], description="Revoke the key with this id, or all keys so named."
    )
    async def revoke_api_key(self, info: Info, id_or_name: str) -> ApiKeysRevoked:
        revoked = await info.context.repos.api_keys.revoke(id_or_name, info.context.now)
        return ApiKeysRevoked(keys=[ApiKeyType.from_domain(k) for k in revoked])

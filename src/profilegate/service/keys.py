"""API keys: creation (the secret is shown once), authentication with a short cache, revocation."""

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from profilegate.domain.changes import ChangeKind
from profilegate.domain.errors import InvalidInput
from profilegate.domain.keys import (
    ApiKey,
    Principal,
    Role,
    check_fields,
    check_key_name,
    check_origins,
    format_key,
    hash_secret,
    parse_key,
    secret_matches,
)
from profilegate.domain.shopper_proofs import check_public_key, new_proof_secret
from profilegate.service.cached import Cached
from profilegate.storage.api_keys import ApiKeyRepository

ADMIN_KEY_NAME = "admin-key"


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str


async def create_key(
    keys: ApiKeyRepository,
    name: str,
    role: Role,
    now: datetime,
    *,
    change_kinds: tuple[ChangeKind, ...] | None = None,
    fields: tuple[str, ...] = (),
    allowed_origins: tuple[str, ...] = (),
    persisted_only: bool = False,
    proof_public_key: str | None = None,
) -> CreatedKey:
    """``change_kinds`` and ``fields`` scope a partner's change feed (see ``Scope``);
    ``allowed_origins`` are the browser origins that may use the key. A storefront key checks
    shopper proofs with ``proof_public_key`` (PEM) when given, else with a fresh HS256 secret."""
    check_key_name(name)
    if proof_public_key is not None and role is not Role.STOREFRONT:
        raise InvalidInput("proofPublicKey", "only a storefront key checks shopper proofs")
    public_key = None if proof_public_key is None else check_public_key(proof_public_key)
    proof_secret = new_proof_secret() if role is Role.STOREFRONT and public_key is None else None
    key_id, secret = secrets.token_hex(8), secrets.token_hex(24)
    key = ApiKey(
        id=key_id,
        name=name,
        role=role,
        secret_hash=hash_secret(secret),
        created_at=now,
        change_kinds=None if change_kinds is None else tuple(dict.fromkeys(change_kinds)),
        fields=check_fields(fields),
        allowed_origins=check_origins(allowed_origins),
        persisted_only=persisted_only,
        proof_secret=proof_secret,
        proof_public_key=public_key,
    )
    await keys.insert(key)
    return CreatedKey(key=key, token=format_key(key_id, secret))


class Authenticator:
    """Turns a bearer token into a principal.

    Verified keys are cached for ``cache_seconds`` so the checkout path does not read the
    store on every request; a revoked key therefore stops working within that time.
    """

    def __init__(self, keys: ApiKeyRepository, *, admin_key: str | None, cache_seconds: float) -> None:
        self._keys = keys
        self._admin_key = admin_key
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._origins = Cached(keys.allowed_origins, cache_seconds)

    async def any_key_allows(self, origin: str) -> bool:
        """Whether some live key allows ``origin``; the set is read again after the cache time."""
        return origin in await self._origins.get()

    async def authenticate(self, token: str) -> Principal | None:
        if self._admin_key and hmac.compare_digest(token.encode(), self._admin_key.encode()):
            return Principal(name=ADMIN_KEY_NAME, role=Role.ADMIN)
        parsed = parse_key(token)
        if parsed is None:
            return None
        cached = self._cache.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        principal = await self._lookup(*parsed)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (time.monotonic() + self._cache_seconds, principal)
        return principal

    async def _lookup(self, key_id: str, secret: str) -> Principal | None:
        key = await self._keys.get(key_id)
        if key is None or key.revoked_at is not None or not secret_matches(secret, key.secret_hash):
            return None
        return Principal(
            name=key.name,
            role=key.role,
            key_id=key.id,
            change_kinds=key.change_kinds,
            fields=key.fields,
            allowed_origins=key.allowed_origins,
            persisted_only=key.persisted_only,
            proof_key=key.proof_key,
        )

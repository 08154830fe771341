"""API keys and the roles that gate each field of the schema."""

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from profilegate.domain.changes import FULL_SCOPE, ChangeKind, Scope
from profilegate.domain.errors import InvalidInput
from profilegate.domain.shopper_proofs import ProofKey

KEY_PREFIX = "pgk"
_KEY_NAME = re.compile(r"^[\w .:@-]{1,80}$")
SHOP_METRICS_GRANT = "shopMetrics"  # in a partner key's fields: it may read shopMetrics
_FIELD = re.compile(r"^(identities|traits|traits\.[A-Za-z0-9_-]{1,64}|shopMetrics)$")
MAX_FIELDS = 50
MAX_ORIGINS = 20
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"^[a-z0-9.-]{1,253}$|^[0-9a-f:.]{2,45}$")  # a name (punycode) or an IP


class Role(StrEnum):
    ADMIN = "admin"
    STOREFRONT = "storefront"
    INGEST = "ingest"
    PARTNER = "partner"


class ApiKey(BaseModel):
    """A stored key: its public id and the SHA-256 of its secret, never the secret."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: Role
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    change_kinds: tuple[ChangeKind, ...] | None = None  # what a partner's feed holds; None: all
    fields: tuple[str, ...] = ()  # the personal fields a partner's feed shows (see Scope)
    allowed_origins: tuple[str, ...] = ()  # browser origins that may use the key (CORS)
    persisted_only: bool = False  # the key may run registered (persisted) operations only
    proof_secret: str | None = None  # a storefront key's HS256 secret for shopper proofs
    proof_public_key: str | None = None  # or the shop's public key (PEM) that signs them

    @property
    def proof_key(self) -> ProofKey:
        return ProofKey(audience=self.id, secret=self.proof_secret, public_key_pem=self.proof_public_key)


class Principal(BaseModel):
    """Who is calling: the key's name (recorded as ``by`` in provenance) and role."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    key_id: str | None = None
    change_kinds: tuple[ChangeKind, ...] | None = None
    fields: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    persisted_only: bool = False
    proof_key: ProofKey = ProofKey(audience="")  # how its shopper proofs are checked (storefront keys)

    @property
    def may_read_shop_metrics(self) -> bool:
        """The shop's counts: admins, and partners granted them (no personal data in them)."""
        return self.role is Role.ADMIN or (self.role is Role.PARTNER and SHOP_METRICS_GRANT in self.fields)

    def feed_scope(self) -> Scope:
        """What this caller sees of the change feed: admins all of it, others their key's scope
        and only profiles that allow partner sharing."""
        if self.role is Role.ADMIN:
            return FULL_SCOPE
        kinds = None if self.change_kinds is None else frozenset(self.change_kinds)
        return Scope(kinds=kinds, fields=frozenset(self.fields))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def parse_key(token: str) -> tuple[str, str] | None:
    """Split ``pgk_<id>_<secret>`` into id and secret; ``None`` for anything else."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def check_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    if len(fields) > MAX_FIELDS:
        raise InvalidInput("fields", f"at most {MAX_FIELDS} fields")
    for index, field in enumerate(fields):
        if not _FIELD.fullmatch(field):
            raise InvalidInput(f"fields[{index}]", "must be identities, traits, traits.<key> or shopMetrics")
    return tuple(dict.fromkeys(fields))


def check_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    """Browser origins, ``scheme://host[:port]``, as browsers send them (lower case, no default port)."""
    if len(origins) > MAX_ORIGINS:
        raise InvalidInput("allowedOrigins", f"at most {MAX_ORIGINS} origins")
    return tuple(dict.fromkeys(_origin(f"allowedOrigins[{index}]", o) for index, o in enumerate(origins)))


def _origin(field: str, origin: str) -> str:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        raise InvalidInput(field, "must be scheme://host[:port]") from None
    hostname = parts.hostname or ""
    if not parts.scheme or not _HOST.fullmatch(hostname) or parts.username is not None:
        raise InvalidInput(field, "must be scheme://host[:port]")
    if parts.path or parts.query or parts.fragment or origin.strip().endswith(("?", "#")):
        raise InvalidInput(field, "must be scheme://host[:port], without a path")
    host = f"[{hostname}]" if ":" in hostname else hostname
    scheme = parts.scheme.lower()
    shown_port = "" if port is None or _DEFAULT_PORTS.get(scheme) == port else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def check_key_name(name: str) -> str:
    if not _KEY_NAME.fullmatch(name):
        raise InvalidInput("name", "must be 1-80 characters of letters, digits, spaces and '.:@_-'")
    return name

"""API keys and the roles that gate each field of the schema."""

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput

KEY_PREFIX = "pgk"
_KEY_NAME = re.compile(r"^[\w .:@-]{1,80}$")


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


class Principal(BaseModel):
    """Who is calling: the key's name (recorded as ``by`` in provenance) and role."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    key_id: str | None = None


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


def check_key_name(name: str) -> str:
    if not _KEY_NAME.fullmatch(name):
        raise InvalidInput("name", "must be 1-80 characters of letters, digits, spaces and '.:@_-'")
    return name

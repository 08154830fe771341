"""The audit log's entries: who did what to which profile, when, and how it ended.

Arguments are recorded without secrets and without personal data: an entry says which
profile (by id) an action touched, never who the person is, so erasing a person leaves the
audit trail of the erasure intact and free of their identities.
"""

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput
from profilegate.domain.keys import Role

# Argument keys whose values are secrets: never recorded.
SECRET_KEYS = frozenset({"token", "secret", "password", "apiKey", "authorization"})
# Argument keys whose values are personal data: recorded as "[personal]"; so is the ``value``
# of an identity (an input object holding ``type`` and ``value``).
PERSONAL_KEYS = frozenset({"anonymousId", "traits", "properties"})
REDACTED_SECRET = "[secret]"
REDACTED_PERSONAL = "[personal]"
MAX_LIST_ITEMS = 20
MAX_STRING_LENGTH = 300
MAX_DEPTH = 6
MAX_PAGE = 200
DEFAULT_PAGE = 50


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    key_id: str | None
    role: Role


class NewAuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: Actor
    action: str  # the root field's name, e.g. ``eraseProfile``
    arguments: dict[str, Any]
    profile_id: str | None
    outcome: str  # the result's type name, or the error's code


class AuditEntry(NewAuditEntry):
    seq: int

    @property
    def cursor(self) -> str:
        return encode_audit_cursor(self.seq)


class AuditFilter(BaseModel):
    model_config = ConfigDict(frozen=True)

    actor: str | None = None  # a key's name or id
    action: str | None = None
    profile_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None


def redact_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as recorded: secrets and personal values replaced, long lists and
    strings cut (a 500-event batch is recorded as its first items and a count)."""
    return {key: _redacted(key, value, 0) for key, value in arguments.items()}


def _redacted(key: str, value: Any, depth: int) -> Any:
    if key in SECRET_KEYS:
        return REDACTED_SECRET
    if key in PERSONAL_KEYS and value is not None:
        return REDACTED_PERSONAL
    if depth >= MAX_DEPTH:
        return "[nested]"
    if isinstance(value, Mapping):
        if {"type", "value"} <= value.keys():
            value = {**value, "value": REDACTED_PERSONAL}
        return {str(k): _redacted(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_redacted(key, item, depth + 1) for item in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            items.append(f"[{len(value) - MAX_LIST_ITEMS} more]")
        return items
    if isinstance(value, Enum):
        return value.name  # as the API spells it
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        return value[:MAX_STRING_LENGTH] + "..."
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def check_page_size(first: int, field: str = "first") -> int:
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(field, f"must be between 1 and {MAX_PAGE}")
    return first


def encode_audit_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{seq}".encode()).decode().rstrip("=")


def decode_audit_cursor(cursor: str, field: str = "after") -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, seq = text.split(":")
        place = int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(field, "is not a cursor the audit log gave out") from error
    if prefix != "audit" or place < 1:
        raise InvalidInput(field, "is not a cursor the audit log gave out")
    return place

"""Erasure (GDPR art. 17): what a tombstone is keyed by, and the refusal to recreate a person.

A tombstone never holds the plain identity: its ``_id`` is the SHA-256 of the normalised
identity key (``email:ann@example.com``), or of ``profile:<id>`` for the profile id, so the
store can still answer "was this person erased?" without keeping who they were.
"""

import hashlib
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput

PROFILE_KEY_PREFIX = "profile:"


def tombstone_id(key: str) -> str:
    """The tombstone's ``_id`` for a normalised identity key or a :func:`profile_key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def profile_key(profile_id: str) -> str:
    return f"{PROFILE_KEY_PREFIX}{profile_id}"


class Tombstone(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    erased_at: datetime
    reason: str
    erasing: str | None = None  # the profile whose erasure is under way (a crash left it unfinished)


class PersonErased(InvalidInput):
    """An identity or profile id of an erased person: nothing is recreated for it."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "the person was erased; their data is not recreated")

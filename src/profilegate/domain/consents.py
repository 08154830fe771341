"""Consent per purpose (e-mail marketing, personalisation, ads, partner sharing, ...)."""

import re
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput

_SOURCE = re.compile(r"^[\w:./@-]{1,100}$")


class Consent(BaseModel):
    model_config = ConfigDict(frozen=True)

    purpose: str
    granted: bool
    at: datetime
    source: str


def check_purpose(purpose: str, known: Iterable[str], field: str = "purpose") -> str:
    allowed = tuple(known)
    if purpose not in allowed:
        raise InvalidInput(field, f"unknown purpose {purpose!r}; known: {', '.join(allowed)}")
    return purpose


def check_source(source: str, field: str = "source") -> str:
    if not _SOURCE.fullmatch(source):
        raise InvalidInput(field, "must be 1-100 characters of letters, digits and ':./@_-'")
    return source

"""Typed identities and their normalisation to one canonical key."""

import re
from enum import StrEnum

import phonenumbers
from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput

MAX_IDENTITY_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
_NOT_A_PHONE_NUMBER = "is not a phone number; expected the international form, e.g. +49 30 1234567"


class IdentityType(StrEnum):
    EMAIL = "email"
    CUSTOMER_ID = "customerId"
    ANONYMOUS_ID = "anonymousId"
    LOYALTY_CARD = "loyaltyCard"
    PHONE = "phone"


class Identity(BaseModel):
    """A normalised identity; build one with :func:`normalise_identity`."""

    model_config = ConfigDict(frozen=True)

    type: IdentityType
    value: str

    @property
    def key(self) -> str:
        """The identity's unique key, e.g. ``email:ann@example.com``."""
        return f"{self.type.value}:{self.value}"


def normalise_identity(
    kind: IdentityType, raw: str, *, field: str = "identity", phone_region: str = "DE"
) -> Identity:
    """``field`` is the path of the identity object; a problem names its ``value``."""
    return _normalised(kind, raw, f"{field}.value", phone_region)


def anonymous_id(raw: str, field: str = "anonymousId") -> Identity:
    """A visitor's anonymous id, sent on its own (``field`` is the path of the string)."""
    return _normalised(IdentityType.ANONYMOUS_ID, raw, field, "DE")


def _normalised(kind: IdentityType, raw: str, path: str, phone_region: str) -> Identity:
    value = raw.strip()
    if not value:
        raise InvalidInput(path, "must not be empty")
    if len(value) > MAX_IDENTITY_LENGTH:
        raise InvalidInput(path, f"is longer than {MAX_IDENTITY_LENGTH} characters")
    match kind:
        case IdentityType.EMAIL:
            value = _email(value, path)
        case IdentityType.PHONE:
            value = _phone(value, path, phone_region)
        case IdentityType.LOYALTY_CARD:
            value = _token(re.sub(r"[\s-]", "", value).upper(), path)
        case IdentityType.CUSTOMER_ID | IdentityType.ANONYMOUS_ID:
            value = _token(value, path)
    return Identity(type=kind, value=value)


def _email(value: str, path: str) -> str:
    lowered = value.lower()
    if not _EMAIL.match(lowered):
        raise InvalidInput(path, "is not an e-mail address; expected name@domain, e.g. ann@example.com")
    return lowered


def _phone(value: str, path: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(path, _NOT_A_PHONE_NUMBER) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(path, _NOT_A_PHONE_NUMBER)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _token(value: str, path: str) -> str:
    if not _TOKEN.match(value):
        raise InvalidInput(path, "must be printable ASCII without spaces")
    return value

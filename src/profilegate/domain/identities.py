"""Typed identities and their normalisation to one canonical key."""

import re
from enum import StrEnum

import phonenumbers
from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput

MAX_IDENTITY_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")


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
    value = raw.strip()
    if not value:
        raise InvalidInput(f"{field}.value", "must not be empty")
    if len(value) > MAX_IDENTITY_LENGTH:
        raise InvalidInput(f"{field}.value", f"is longer than {MAX_IDENTITY_LENGTH} characters")
    match kind:
        case IdentityType.EMAIL:
            value = _email(value, field)
        case IdentityType.PHONE:
            value = _phone(value, field, phone_region)
        case IdentityType.LOYALTY_CARD:
            value = _token(re.sub(r"[\s-]", "", value).upper(), field)
        case IdentityType.CUSTOMER_ID | IdentityType.ANONYMOUS_ID:
            value = _token(value, field)
    return Identity(type=kind, value=value)


def _email(value: str, field: str) -> str:
    lowered = value.lower()
    if not _EMAIL.match(lowered):
        raise InvalidInput(f"{field}.value", "is not an e-mail address")
    return lowered


def _phone(value: str, field: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(f"{field}.value", "is not a phone number") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{field}.value", "is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _token(value: str, field: str) -> str:
    if not _TOKEN.match(value):
        raise InvalidInput(f"{field}.value", "must be printable ASCII without spaces")
    return value

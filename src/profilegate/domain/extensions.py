"""Extensions: named markers on a profile with provenance and an optional expiry."""

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from profilegate.domain.errors import InvalidInput
from profilegate.domain.expected_forms import form

NAME_FORM = "lower-case letters, digits and '-', starting with a letter, at most 63 characters"
EXTENSION_NAME = re.compile(form(r"^[a-z][a-z0-9-]{0,62}$", NAME_FORM))
# Extensions one profile carries at most; expired ones give way first (docs/profile-document.md).
MAX_EXTENSIONS_PER_PROFILE = 64
MANUAL = "manual"


class ExtensionDefinition(BaseModel):
    """An entry of the extension catalogue; a profile may only carry defined extensions."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = Field(max_length=1000)
    partner_settable: bool = False
    shown_to_shopper: bool = False  # a storefront key may show it to the shopper it is about
    default_lifetime_days: int | None = Field(default=None, ge=1, le=36_500)

    def expiry(self, now: datetime, requested: datetime | None) -> datetime | None:
        if requested is not None:
            return requested
        if self.default_lifetime_days is None:
            return None
        return now + timedelta(days=self.default_lifetime_days)


class ExtensionGrant(BaseModel):
    """An extension as it sits on a profile: who set it, when, why, until when."""

    model_config = ConfigDict(frozen=True)

    name: str
    at: datetime
    by: str
    reason: str
    source: str = MANUAL
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def same_assignment(self, other: "ExtensionGrant") -> bool:
        """True when ``other`` would set nothing new: same reason, source and expiry."""
        return (self.reason, self.source, self.expires_at) == (
            other.reason,
            other.source,
            other.expires_at,
        )


def check_extension_name(name: str, field: str = "name") -> str:
    if not EXTENSION_NAME.fullmatch(name):
        raise InvalidInput(field, f"must be {NAME_FORM}")
    return name


def active_extensions(grants: Mapping[str, ExtensionGrant], now: datetime) -> dict[str, ExtensionGrant]:
    """The extensions in force at ``now``; expired ones are simply absent."""
    return {name: grant for name, grant in grants.items() if grant.active(now)}


def check_room_for(grants: Mapping[str, ExtensionGrant], name: str, now: datetime) -> None:
    """A new extension fits only while fewer than the cap are in force on the profile."""
    if name not in grants and len(active_extensions(grants, now)) >= MAX_EXTENSIONS_PER_PROFILE:
        raise InvalidInput("name", f"a profile carries at most {MAX_EXTENSIONS_PER_PROFILE} extensions")


def capped_grants(grants: Mapping[str, ExtensionGrant], now: datetime) -> dict[str, ExtensionGrant]:
    """At most :data:`MAX_EXTENSIONS_PER_PROFILE` grants: expired ones go first, then the oldest."""
    if len(grants) <= MAX_EXTENSIONS_PER_PROFILE:
        return dict(grants)
    ranked = sorted(
        grants.values(), key=lambda grant: (grant.active(now), grant.at, grant.name), reverse=True
    )
    return {grant.name: grant for grant in ranked[:MAX_EXTENSIONS_PER_PROFILE]}

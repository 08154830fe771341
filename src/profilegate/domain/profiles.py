"""The customer profile: one flexible document per shopper."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from profilegate.domain.aggregates import Aggregates
from profilegate.domain.consents import Consent
from profilegate.domain.extensions import ExtensionGrant, active_extensions
from profilegate.domain.identities import Identity


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    identities: tuple[Identity, ...] = ()
    traits: dict[str, Any] = Field(default_factory=dict)
    consents: dict[str, Consent] = Field(default_factory=dict)
    extensions: dict[str, ExtensionGrant] = Field(default_factory=dict)
    aggregates: Aggregates = Aggregates()
    merged_into: str | None = None
    merged_from: tuple[str, ...] = ()
    version: int = 1
    created_at: datetime
    updated_at: datetime

    def active_extensions(self, now: datetime) -> dict[str, ExtensionGrant]:
        return active_extensions(self.extensions, now)

    def has_identity(self, identity: Identity) -> bool:
        return identity in self.identities

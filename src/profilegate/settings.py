"""Configuration, read from the environment (prefix ``PROFILEGATE_``) and passed in explicitly."""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from profilegate.domain.traits import TraitLimits

EMBEDDED_PARTITIONS = 16

DEFAULT_CONSENT_PURPOSES = ("email_marketing", "personalisation", "ads", "partner_sharing")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILEGATE_", frozen=True, extra="ignore")

    env: Literal["development", "production"] = "development"
    mongodb_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MONGODB_URI", "PROFILEGATE_MONGODB_URI")
    )
    database: str = "profilegate"
    data_dir: Path = Path("data")
    embedded_engine: Literal["sqlite", "memory"] = "sqlite"
    store_partitions: int | None = Field(default=None, ge=1, le=256)
    host: str = "127.0.0.1"
    port: int = 8000
    admin_key: SecretStr | None = None
    key_cache_seconds: float = Field(default=10.0, ge=0)
    consent_purposes: tuple[str, ...] = DEFAULT_CONSENT_PURPOSES
    default_phone_region: str = "DE"
    max_identities_per_profile: int = Field(default=20, ge=1, le=1000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    traits_max_bytes: int = Field(default=16_384, ge=256)
    traits_max_keys: int = Field(default=256, ge=1)
    traits_max_depth: int = Field(default=5, ge=1)
    trait_key_max_length: int = Field(default=64, ge=1)

    @property
    def production(self) -> bool:
        return self.env == "production"

    def partitions(self, *, embedded: bool) -> int:
        """How many collections the write-heavy ones spread over, on first use of a database."""
        if self.store_partitions is not None:
            return self.store_partitions
        return EMBEDDED_PARTITIONS if embedded else 1

    @property
    def trait_limits(self) -> TraitLimits:
        return TraitLimits(
            max_bytes=self.traits_max_bytes,
            max_keys=self.traits_max_keys,
            max_depth=self.traits_max_depth,
            max_key_length=self.trait_key_max_length,
        )

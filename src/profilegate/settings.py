"""Configuration, read from the environment (prefix ``PROFILEGATE_``) and passed in explicitly."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal, TypedDict

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import PROPERTY_LIMITS, EventRules
from profilegate.domain.free_form import MONGODB_MAX_BYTES, MONGODB_MAX_DEPTH, FreeFormLimits
from profilegate.domain.keys import Role
from profilegate.domain.money import Currencies
from profilegate.domain.rate_limits import RateLimit
from profilegate.domain.shop_days import (
    DEFAULT_CHURN_DAYS,
    DEFAULT_SESSION_TIMEOUT_MINUTES,
    ShopRules,
    shop_zone,
)
from profilegate.domain.traits import TraitLimits
from profilegate.logs import LogFormat, LogLevel
from profilegate.service.aggregate_check import CheckRules
from profilegate.service.destinations.rules import DeliveryRules
from profilegate.service.feed import FeedRules
from profilegate.service.identify import IdentifyRules
from profilegate.service.profiles import ProfileRules
from profilegate.service.segments import SegmentRules
from profilegate.service.tiers import TierRules
from profilegate.service.tracking import TrackingRules
from profilegate.storage.layout import MAX_TTL_SECONDS, Layout, LayoutKind

EMBEDDED_PARTITIONS = 16
# Documents per event-log segment on the embedded store, where each insert costs O(segment
# size): 250 keeps a logged event at a few milliseconds (1,000 cost ~47 ms, measured).
EMBEDDED_EVENT_SEGMENT = 250

# Retentions kept by TTL indexes, whose expireAfterSeconds is a 32-bit signed integer
# (https://www.mongodb.com/docs/manual/core/index-ttl/): at most 24,855 days.
TTL_RETENTIONS = (
    "event_retention_days",
    "change_retention_days",
    "tombstone_retention_days",
    "audit_retention_days",
    "destinations_log_retention_days",
)
DAY_SECONDS = 86_400


class StoreOptions(TypedDict):
    explicit: bool
    event_retention_seconds: int
    change_retention_seconds: int
    tombstone_retention_seconds: int
    audit_retention_seconds: int
    delivery_retention_seconds: int
    event_write: str
    event_journal: bool


DEFAULT_CONSENT_PURPOSES = ("email_marketing", "personalisation", "ads", "partner_sharing")
QUERY_LIMIT_NAMES = ("depth", "aliases", "root_fields", "tokens", "cost")  # api/limits.py


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROFILEGATE_", frozen=True, extra="ignore")

    env: Literal["development", "production"] = "development"
    mongodb_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MONGODB_URI", "PROFILEGATE_MONGODB_URI")
    )
    database: str = "profilegate"
    data_dir: Path = Path("data")
    embedded_engine: Literal["sqlite", "memory"] = "sqlite"
    # embedded or mongodb (storage/layout.py); unset: embedded on the embedded store, else mongodb.
    storage_layout: LayoutKind | None = None
    store_partitions: int | None = Field(default=None, ge=1, le=256)
    host: str = "127.0.0.1"
    port: int = 8000
    admin_key: SecretStr | None = None
    # The admin console at /admin (api/console.py); its data calls need an admin key anyway.
    admin_console: bool = True
    key_cache_seconds: float = Field(default=10.0, ge=0)
    consent_purposes: tuple[str, ...] = DEFAULT_CONSENT_PURPOSES
    default_phone_region: str = "DE"
    max_identities_per_profile: int = Field(default=20, ge=1, le=1000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    traits_max_bytes: int = Field(default=16_384, ge=256)
    traits_max_keys: int = Field(default=256, ge=1)
    traits_max_depth: int = Field(default=5, ge=1)
    trait_key_max_length: int = Field(default=64, ge=1)
    # What one event's properties may hold (domain/events.py, docs/limits.md); bounded well
    # under MongoDB's nesting depth of 100 and its 16 MiB documents.
    event_properties_max_bytes: int = Field(
        default=PROPERTY_LIMITS.max_bytes, ge=256, le=MONGODB_MAX_BYTES // 4
    )
    event_properties_max_keys: int = Field(default=PROPERTY_LIMITS.max_keys, ge=1, le=100_000)
    event_properties_max_depth: int = Field(
        default=PROPERTY_LIMITS.max_depth, ge=1, le=MONGODB_MAX_DEPTH // 2
    )
    event_property_key_max_length: int = Field(default=PROPERTY_LIMITS.max_key_length, ge=1, le=1024)
    event_property_string_max_length: int = Field(default=PROPERTY_LIMITS.max_string_length or 8192, ge=1)
    event_segment_size: int | None = Field(default=None, ge=100)
    event_retention_days: int = Field(default=1130, ge=1)
    # Write concern of the event log: "majority" or a number of members; with the journal.
    # https://www.mongodb.com/docs/manual/reference/write-concern/
    event_write_concern: str = Field(default="majority", pattern=r"^(majority|[1-9][0-9]?)$")
    event_write_journal: bool = True
    daily_retention_days: int = Field(default=1130, ge=1)
    base_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    currency_rates: dict[str, Decimal] = Field(default_factory=dict)
    # Shop metrics: the days of this IANA time zone are the shop's days (docs/metrics.md).
    shop_time_zone: str = "UTC"
    churn_days: int = Field(default=DEFAULT_CHURN_DAYS, ge=1, le=3650)
    # How often a process writes the day rollups it holds, and how long a process may say
    # nothing before its held rollups are recovered from the log (service/shop_rollups.py).
    shop_rollup_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    shop_rollup_silent_seconds: float = Field(default=60.0, ge=1, le=3600)
    # The longest gap between a visitor's events in one session, for engaged time; at most
    # 12 hours, so a view's next event is on its shop day or the next (docs/metrics.md).
    session_timeout_minutes: int = Field(default=DEFAULT_SESSION_TIMEOUT_MINUTES, ge=1, le=720)
    max_event_skew_seconds: int = Field(default=300, ge=0)
    blocked_identities: tuple[str, ...] = ()
    tier_policy_cache_seconds: float = Field(default=5.0, ge=0)
    access_log: bool = True
    # JSON or text log lines (profilegate/logs.py); unset: JSON in production, text in development.
    log_format: LogFormat | None = None
    log_level: LogLevel = "info"
    # /metrics is served only with this token, sent by the scraper as a bearer token.
    metrics_token: SecretStr | None = None
    segment_indexes: bool = True
    # Set by `serve` for its workers: MONGODB_URI then names the embedded store it started.
    embedded_store_running: bool = False
    segment_cache_seconds: float = Field(default=5.0, ge=0)
    segment_refresh_seconds: float = Field(default=3600.0, ge=0)
    change_retention_days: int = Field(default=7, ge=1)
    tombstone_retention_days: int = Field(default=1095, ge=1)
    audit_retention_days: int = Field(default=400, ge=1)
    feed_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    feed_queue_size: int = Field(default=1000, ge=1)
    feed_hole_seconds: float = Field(default=5.0, gt=0)
    partner_consent_purpose: str = "partner_sharing"
    # Per role, the query limits that differ from the defaults (api/limits.py), e.g.
    # {"storefront": {"depth": 8, "cost": 400}}; keys: depth aliases root_fields tokens cost.
    query_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Requests per second and burst per API key, by the key's role (see api/rate_limits.py).
    rate_limit_storefront_per_second: float = Field(default=50.0, gt=0)
    rate_limit_storefront_burst: int = Field(default=100, ge=1)
    rate_limit_ingest_per_second: float = Field(default=200.0, gt=0)
    rate_limit_ingest_burst: int = Field(default=400, ge=1)
    rate_limit_partner_per_second: float = Field(default=20.0, gt=0)
    rate_limit_partner_burst: int = Field(default=40, ge=1)
    rate_limit_admin_per_second: float = Field(default=100.0, gt=0)
    rate_limit_admin_burst: int = Field(default=200, ge=1)
    # Destinations (service/destinations): whether this process runs deliverers, whether a
    # destination may resolve to a loopback/private/link-local address, and its delivery rules.
    destinations_deliver: bool = True
    destinations_allow_private: bool = False
    destinations_request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    destinations_response_max_bytes: int = Field(default=65_536, ge=1024)
    destinations_retry_first_seconds: float = Field(default=5.0, gt=0)
    destinations_retry_max_seconds: float = Field(default=3600.0, gt=0)
    destinations_retry_for_seconds: float = Field(default=86_400.0, gt=0)
    destinations_pause_after_dead_letters: int = Field(default=3, ge=1)
    destinations_pause_after_failing_seconds: float = Field(default=172_800.0, gt=0)
    destinations_lease_seconds: float = Field(default=10.0, ge=0.3, le=300)
    destinations_refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    destinations_secret_grace_hours: float = Field(default=24.0, ge=0)
    destinations_log_retention_days: int = Field(default=30, ge=1)

    @field_validator("query_limits")
    @classmethod
    def _known_query_limits(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        roles = [role.value for role in Role]
        for role, limits in value.items():
            if role not in roles:
                raise ValueError(f"unknown role {role!r}; roles: {', '.join(roles)}")
            unknown = sorted(set(limits) - set(QUERY_LIMIT_NAMES))
            if unknown:
                names = ", ".join(QUERY_LIMIT_NAMES)
                raise ValueError(f"unknown limits {unknown} for {role}; limits: {names}")
            if any(limit < 1 for limit in limits.values()):
                raise ValueError(f"the limits for {role} must be at least 1")
        return value

    @field_validator(*TTL_RETENTIONS)
    @classmethod
    def _fits_a_ttl_index(cls, value: int, info: ValidationInfo) -> int:
        if value * DAY_SECONDS > MAX_TTL_SECONDS:
            name = f"PROFILEGATE_{str(info.field_name).upper()}"
            raise ValueError(
                f"{name}={value} is {value * DAY_SECONDS} s, more than a TTL index's expireAfterSeconds "
                f"holds ({MAX_TTL_SECONDS} s, {MAX_TTL_SECONDS // DAY_SECONDS} days)"
            )
        return value

    @field_validator("shop_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            shop_zone(value)
        except InvalidInput as error:
            raise ValueError(f"PROFILEGATE_SHOP_TIME_ZONE: {error.reason}") from error
        return value

    @model_validator(mode="after")
    def _a_live_process_is_never_taken_for_silent(self) -> "Settings":
        if self.shop_rollup_silent_seconds <= 3 * self.shop_rollup_flush_seconds:
            raise ValueError(
                "PROFILEGATE_SHOP_ROLLUP_SILENT_SECONDS must be more than three times "
                "PROFILEGATE_SHOP_ROLLUP_FLUSH_SECONDS (a process renews its mark at each flush)"
            )
        return self

    @model_validator(mode="after")
    def _layout_options_fit_the_layout(self) -> "Settings":
        if self.layout_kind is LayoutKind.MONGODB:
            for name in ("store_partitions", "event_segment_size"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"PROFILEGATE_{name.upper()} applies to the embedded layout only "
                        "(PROFILEGATE_STORAGE_LAYOUT=embedded)"
                    )
        return self

    @property
    def uses_embedded_store(self) -> bool:
        return self.mongodb_uri is None or self.embedded_store_running

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def log_format_in_use(self) -> LogFormat:
        return self.log_format or ("json" if self.production else "text")

    @property
    def rate_limits(self) -> dict[Role, RateLimit]:
        return {
            Role.STOREFRONT: RateLimit(
                per_second=self.rate_limit_storefront_per_second, burst=self.rate_limit_storefront_burst
            ),
            Role.INGEST: RateLimit(
                per_second=self.rate_limit_ingest_per_second, burst=self.rate_limit_ingest_burst
            ),
            Role.PARTNER: RateLimit(
                per_second=self.rate_limit_partner_per_second, burst=self.rate_limit_partner_burst
            ),
            Role.ADMIN: RateLimit(
                per_second=self.rate_limit_admin_per_second, burst=self.rate_limit_admin_burst
            ),
        }

    @property
    def layout_kind(self) -> LayoutKind:
        """The layout asked for, else the one that suits the store in use."""
        if self.storage_layout is not None:
            return self.storage_layout
        return LayoutKind.EMBEDDED if self.uses_embedded_store else LayoutKind.MONGODB

    @property
    def layout(self) -> Layout:
        """Where documents go in a database used for the first time (DESIGN sec. 2, 8)."""
        if self.layout_kind is LayoutKind.MONGODB:
            return Layout()
        return Layout.embedded(
            self.store_partitions or EMBEDDED_PARTITIONS, self.event_segment_size or EMBEDDED_EVENT_SEGMENT
        )

    @property
    def store_options(self) -> StoreOptions:
        """What ``storage.store.prepare`` takes from the settings, besides the layout."""
        return StoreOptions(
            explicit=self.storage_layout is not None,
            event_retention_seconds=self.event_retention_days * DAY_SECONDS,
            change_retention_seconds=self.change_retention_days * DAY_SECONDS,
            tombstone_retention_seconds=self.tombstone_retention_days * DAY_SECONDS,
            audit_retention_seconds=self.audit_retention_days * DAY_SECONDS,
            delivery_retention_seconds=self.destinations_log_retention_days * DAY_SECONDS,
            event_write=self.event_write_concern,
            event_journal=self.event_write_journal,
        )

    @property
    def profile_rules(self) -> ProfileRules:
        return ProfileRules(self.trait_limits, self.max_identities_per_profile, self.consent_purposes)

    @property
    def check_rules(self) -> CheckRules:
        """What ``rebuild-aggregates --check`` and ``aggregateCheck`` hold the store to."""
        return CheckRules(self.daily_retention_days, self.event_retention_days, self.tracking_rules.shop)

    @property
    def tracking_rules(self) -> TrackingRules:
        return TrackingRules(
            events=self.event_rules,
            profiles=self.profile_rules,
            retention_days=self.daily_retention_days,
            shop=ShopRules(
                zone=shop_zone(self.shop_time_zone),
                churn_days=self.churn_days,
                session_timeout=timedelta(minutes=self.session_timeout_minutes),
            ),
        )

    @property
    def identify_rules(self) -> IdentifyRules:
        return IdentifyRules(
            profiles=self.profile_rules,
            blocked_identities=frozenset(self.blocked_identities),
            retention_days=self.daily_retention_days,
        )

    @property
    def tier_rules(self) -> TierRules:
        return TierRules(currency=self.base_currency, kept_days=self.daily_retention_days)

    @property
    def segment_rules(self) -> SegmentRules:
        return SegmentRules(
            currencies=self.event_rules.currencies,
            consent_purposes=frozenset(self.consent_purposes),
            kept_days=self.daily_retention_days,
        )

    @property
    def feed_rules(self) -> FeedRules:
        return FeedRules(
            retention=timedelta(days=self.change_retention_days),
            poll_seconds=self.feed_poll_seconds,
            queue_size=self.feed_queue_size,
            hole_seconds=self.feed_hole_seconds,
        )

    @property
    def destination_rules(self) -> DeliveryRules:
        return DeliveryRules(
            development=not self.production,
            allow_private=self.destinations_allow_private,
            consent_purposes=self.consent_purposes,
            timeout_seconds=self.destinations_request_timeout_seconds,
            response_max_bytes=self.destinations_response_max_bytes,
            retry_first_seconds=self.destinations_retry_first_seconds,
            retry_max_seconds=self.destinations_retry_max_seconds,
            retry_for_seconds=self.destinations_retry_for_seconds,
            pause_after_dead_letters=self.destinations_pause_after_dead_letters,
            pause_after_failing_seconds=self.destinations_pause_after_failing_seconds,
            lease_seconds=self.destinations_lease_seconds,
            refresh_seconds=self.destinations_refresh_seconds,
            secret_grace=timedelta(hours=self.destinations_secret_grace_hours),
        )

    @property
    def event_rules(self) -> EventRules:
        return EventRules(
            currencies=Currencies(base=self.base_currency, rates=dict(self.currency_rates)),
            max_future_skew=timedelta(seconds=self.max_event_skew_seconds),
            phone_region=self.default_phone_region,
            properties=FreeFormLimits(
                max_bytes=self.event_properties_max_bytes,
                max_keys=self.event_properties_max_keys,
                max_depth=self.event_properties_max_depth,
                max_key_length=self.event_property_key_max_length,
                max_string_length=self.event_property_string_max_length,
            ),
        )

    @property
    def trait_limits(self) -> TraitLimits:
        return TraitLimits(
            max_bytes=self.traits_max_bytes,
            max_keys=self.traits_max_keys,
            max_depth=self.traits_max_depth,
            max_key_length=self.trait_key_max_length,
        )

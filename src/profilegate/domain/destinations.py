"""Destinations: HTTPS endpoints the change feed is pushed to, and what each of them is sent.

A destination names what it wants (change kinds, segments, tier changes, extensions), the
consent purpose a profile must have granted to be sent at all, and the personal fields it may
see. ``messages_for`` maps one feed change to the messages that destination receives; a profile
that withdraws the purpose or is erased is sent a removal naming only its id and the hashed
identifiers sent before (``SentRecord``), never its data again. Pure: no IO, no clock.
"""

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from profilegate.domain.changes import Change, ChangeKind, Scope
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.identities import IdentityType
from profilegate.domain.profiles import Profile

MAX_BATCH = 500
MAX_WAIT_SECONDS = 300.0
MAX_RATE_PER_SECOND = 1000.0
MAX_SEGMENTS = 100
MAX_EXTENSIONS = 100
MAX_FIELDS = 50
MAX_NAME = 200
MAX_URL = 2048
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_FIELD = re.compile(r"identities|traits|traits\.[A-Za-z0-9_$-]{1,64}")


class DestinationState(StrEnum):
    ENABLED = "enabled"
    PAUSED = "paused"  # by an admin, or after failing too long: resumes where it stopped
    DISABLED = "disabled"  # the receiver said it is gone (410); resume to deliver again


class RemovalReason(StrEnum):
    CONSENT_WITHDRAWN = "consent_withdrawn"
    ERASED = "erased"


class DestinationNotFound(DomainError):
    def __init__(self, destination_id: str) -> None:
        super().__init__(f"no destination has the id {destination_id!r}")
        self.destination_id = destination_id


class DestinationExists(DomainError):
    def __init__(self, destination_id: str) -> None:
        super().__init__(f"a destination with the id {destination_id!r} exists already")
        self.destination_id = destination_id


class DeadLetterNotFound(DomainError):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no dead letter has the batch id {batch_id!r}")
        self.batch_id = batch_id


@dataclass(frozen=True)
class Selection:
    """What a destination is sent: changes of ``kinds``, entering and leaving ``segments``,
    tier changes (``tiers``), extensions named in ``extensions`` being set or removed."""

    kinds: frozenset[ChangeKind] = frozenset()
    segments: tuple[str, ...] = ()
    tiers: bool = False
    extensions: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.kinds or self.segments or self.tiers or self.extensions)

    def wants(self, change: Change) -> bool:
        if change.kind in self.kinds:
            return True
        match change.kind:
            case ChangeKind.SEGMENT_ENTERED | ChangeKind.SEGMENT_LEFT:
                return change.payload.get("segment") in self.segments
            case ChangeKind.TIER_CHANGED:
                return self.tiers
            case ChangeKind.EXTENSION_SET | ChangeKind.EXTENSION_REMOVED:
                return change.payload.get("name") in self.extensions
        return False


@dataclass(frozen=True)
class Secrets:
    """Signing secrets (``whsec_`` + base64). After a rotation the previous one stays valid
    until ``previous_until``: requests carry a signature for each."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def valid(self, now: datetime) -> list[str]:
        keep = self.previous is not None and self.previous_until is not None and now < self.previous_until
        return [self.current, self.previous] if keep and self.previous else [self.current]


@dataclass(frozen=True)
class Delivery:
    """How a destination is sent to: at most ``max_batch`` messages per request, a batch waits
    at most ``max_wait_seconds`` for more, at most ``rate_per_second`` requests a second."""

    max_batch: int = 100
    max_wait_seconds: float = 1.0
    rate_per_second: float = 10.0


@dataclass(frozen=True)
class DestinationSpec:
    """What an admin sets; everything of a destination but its state and secrets."""

    id: str
    name: str
    url: str
    selection: Selection
    consent_purpose: str
    fields: tuple[str, ...] = ()
    hash_identifiers: bool = False
    delivery: Delivery = Delivery()


@dataclass(frozen=True)
class Destination:
    spec: DestinationSpec
    secrets: Secrets
    state: DestinationState
    state_reason: str
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        return self.spec.id


def check_spec(spec: DestinationSpec, *, consent_purposes: Sequence[str], development: bool) -> None:
    """Raise ``InvalidInput`` (paths as the ``input`` argument is written) for a spec that
    breaks a rule; the URL's address is checked at save and send time by the service."""
    if not _ID.fullmatch(spec.id):
        raise InvalidInput(
            "input.id", "must be 1-63 lowercase letters, digits, - or _, starting with a letter or digit"
        )
    if not spec.name.strip() or len(spec.name) > MAX_NAME:
        raise InvalidInput("input.name", f"must be 1-{MAX_NAME} characters")
    check_url(spec.url, development=development)
    if not spec.consent_purpose.strip():
        raise InvalidInput("input.consentPurpose", "must name the purpose a profile must have granted")
    if consent_purposes and spec.consent_purpose not in consent_purposes:
        raise InvalidInput(
            "input.consentPurpose",
            f"must be a consent purpose of this gateway: {', '.join(consent_purposes)}",
        )
    _check_selection(spec.selection)
    if len(spec.fields) > MAX_FIELDS:
        raise InvalidInput("input.fields", f"may name at most {MAX_FIELDS} fields")
    for index, name in enumerate(spec.fields):
        if not _FIELD.fullmatch(name):
            raise InvalidInput(f"input.fields[{index}]", "must be identities, traits or traits.<key>")
    _check_delivery(spec.delivery)


def _check_selection(selection: Selection) -> None:
    if selection.empty:
        raise InvalidInput("input.send", "must name at least one change kind, segment, tiers or extension")
    if len(selection.segments) > MAX_SEGMENTS:
        raise InvalidInput("input.send.segments", f"may name at most {MAX_SEGMENTS} segments")
    if len(selection.extensions) > MAX_EXTENSIONS:
        raise InvalidInput("input.send.extensions", f"may name at most {MAX_EXTENSIONS} extensions")
    for path, names in (("segments", selection.segments), ("extensions", selection.extensions)):
        for index, name in enumerate(names):
            if not name.strip():
                raise InvalidInput(f"input.send.{path}[{index}]", "must not be empty")


def _check_delivery(delivery: Delivery) -> None:
    if not 1 <= delivery.max_batch <= MAX_BATCH:
        raise InvalidInput("input.maxBatch", f"must be 1 to {MAX_BATCH} events per request")
    if not 0 <= delivery.max_wait_seconds <= MAX_WAIT_SECONDS:
        raise InvalidInput("input.maxWaitSeconds", f"must be 0 to {MAX_WAIT_SECONDS:g} seconds")
    if not 0 < delivery.rate_per_second <= MAX_RATE_PER_SECOND:
        raise InvalidInput("input.ratePerSecond", f"must be more than 0 and at most {MAX_RATE_PER_SECOND:g}")


def check_url(url: str, *, development: bool, field: str = "input.url") -> str:
    """The URL's host, once the URL has a form the gateway sends to: https (http too in
    development), a host, no credentials, no fragment."""
    if len(url) > MAX_URL:
        raise InvalidInput(field, f"must be at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(field, "is not a URL") from error
    allowed = ("https", "http") if development else ("https",)
    if parts.scheme not in allowed:
        outside = "" if development else " (http is allowed only when the gateway runs in development)"
        raise InvalidInput(field, f"must be an https:// URL{outside}")
    if not parts.hostname:
        raise InvalidInput(field, "must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(field, "must not carry a user name or password")
    if parts.fragment:
        raise InvalidInput(field, "must not have a #fragment")
    if port == 0:
        raise InvalidInput(field, "must not name port 0")
    return parts.hostname


def refused_address(address: str) -> str | None:
    """Why the gateway does not send to this IP address unless allowed (loopback, link-local,
    private, unspecified, multicast, reserved), or None."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, refused in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if refused:
            return f"resolves to a {kind} address ({ip})"
    return None


# What was sent to a destination about one profile, kept so a removal can name it after erasure.


@dataclass(frozen=True)
class SentRecord:
    hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # "email"/"phone" -> SHA-256
    segments: tuple[str, ...] = ()  # entered and not left since


def hashed_identifiers(profile: Profile) -> dict[str, tuple[str, ...]]:
    """SHA-256 (hex) of the normalised e-mail addresses and E.164 phone numbers, as ad platforms'
    customer lists match on (lowercase, trimmed e-mail; phone with its + and country code)."""
    hashes: dict[str, list[str]] = {}
    for identity in profile.identities:
        if identity.type is IdentityType.EMAIL:
            value = identity.value.strip().lower()
            hashes.setdefault("email", []).append(_sha256(value))
        elif identity.type is IdentityType.PHONE:
            hashes.setdefault("phone", []).append(_sha256(identity.value.strip()))
    return {kind: tuple(sorted(values)) for kind, values in sorted(hashes.items())}


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """The messages for one change, and what they leave recorded for its profile (``record``:
    None leaves it as it was; ``forget``: the profile was removed, drop its record)."""

    messages: list[dict[str, Any]]
    record: SentRecord | None = None
    forget: bool = False


def messages_for(
    spec: DestinationSpec, change: Change, profile: Profile | None, sent: SentRecord | None
) -> Outcome:
    """The messages ``spec``'s destination receives for ``change``, given the profile as it is
    now (None: gone) and what was sent about it before."""
    record = sent or SentRecord()
    if change.kind is ChangeKind.PROFILE_ERASED:
        return _removal(change, record, RemovalReason.ERASED) if sent else Outcome([])
    if change.kind is ChangeKind.CONSENT_CHANGED and change.payload.get("purpose") == spec.consent_purpose:
        if change.payload.get("granted") is False:
            if sent is None:
                return Outcome([])
            return _removal(change, record, RemovalReason.CONSENT_WITHDRAWN)
        if profile is not None and _consents(profile, spec.consent_purpose):
            entered = [key for key in change.segments if key in spec.selection.segments]
            return _entries(spec, change, profile, record, entered)
    if profile is None or not _consents(profile, spec.consent_purpose) or not spec.selection.wants(change):
        return Outcome([])
    message = _message(spec, change, profile, _type_of(change.kind))
    segments = list(record.segments)
    if change.kind is ChangeKind.SEGMENT_ENTERED and message.get("segment") not in segments:
        segments.append(str(message["segment"]))
    if change.kind is ChangeKind.SEGMENT_LEFT and message.get("segment") in segments:
        segments.remove(str(message["segment"]))
    return Outcome([message], SentRecord(_merged_hashes(spec, record, profile), tuple(segments)))


def entered_messages(spec: DestinationSpec, profile: Profile, segment: str, at: datetime) -> Outcome:
    """A resync's ``segment.entered`` for a current member (no feed cursor: ``cursor`` is null)."""
    message: dict[str, Any] = {
        "type": "segment.entered",
        "profileId": profile.id,
        "at": iso(at),
        "cursor": None,
        "segment": segment,
        "resync": True,
        **_profile_fields(spec, profile),
    }
    return Outcome([message], SentRecord(_merged_hashes(spec, SentRecord(), profile), (segment,)))


def _entries(
    spec: DestinationSpec, change: Change, profile: Profile, record: SentRecord, segments: list[str]
) -> Outcome:
    messages = []
    held = list(record.segments)
    for key in segments:
        message = _message(spec, change, profile, "segment.entered")
        message["segment"] = key
        messages.append(message)
        if key not in held:
            held.append(key)
    return Outcome(messages, SentRecord(_merged_hashes(spec, record, profile), tuple(held)))


def _removal(change: Change, record: SentRecord, reason: RemovalReason) -> Outcome:
    base = {
        "profileId": change.profile_id,
        "at": iso(change.at),
        "cursor": change.cursor,
        "reason": reason.value,
    }
    hashed = {"hashedIdentifiers": {kind: list(values) for kind, values in record.hashes.items()}}
    messages = [{"type": "segment.left", **base, "segment": key, **hashed} for key in record.segments]
    messages.append({"type": "profile.removed", **base, **hashed})
    return Outcome(messages, forget=True)


def _message(spec: DestinationSpec, change: Change, profile: Profile, kind: str) -> dict[str, Any]:
    payload = Scope(fields=frozenset(spec.fields)).project(change.payload)
    if change.kind is ChangeKind.EVENT_TRACKED:  # the event's own type and time under its own key
        payload = {"event": payload}
    return {
        **payload,
        "type": kind,
        "profileId": change.profile_id,
        "at": iso(change.at),
        "cursor": change.cursor,
        **_profile_fields(spec, profile),
    }


def _profile_fields(spec: DestinationSpec, profile: Profile) -> dict[str, Any]:
    shown = Scope(fields=frozenset(spec.fields)).project(
        {
            "identities": [{"type": i.type.value, "value": i.value} for i in profile.identities],
            "traits": profile.traits,
        }
    )
    fields: dict[str, Any] = {"profile": shown} if shown else {}
    if spec.hash_identifiers:
        fields["hashedIdentifiers"] = {
            kind: list(values) for kind, values in hashed_identifiers(profile).items()
        }
    return fields


def _merged_hashes(spec: DestinationSpec, record: SentRecord, profile: Profile) -> dict[str, tuple[str, ...]]:
    if not spec.hash_identifiers:
        return dict(record.hashes)
    merged = {kind: set(values) for kind, values in record.hashes.items()}
    for kind, values in hashed_identifiers(profile).items():
        merged.setdefault(kind, set()).update(values)
    return {kind: tuple(sorted(values)) for kind, values in sorted(merged.items())}


def _consents(profile: Profile, purpose: str) -> bool:
    consent = profile.consents.get(purpose)
    return consent is not None and consent.granted


def _type_of(kind: ChangeKind) -> str:
    """``segment_entered`` -> ``segment.entered``, ``tier_changed`` -> ``tier.changed``."""
    return kind.value.replace("_", ".", 1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

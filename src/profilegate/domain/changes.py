"""The change feed's entries: what changed on a profile, told to partners in cursor order.

``profile_changes`` is the pure difference between a profile before and after one write,
together with the segments and tier it had on either side; the service computes those.
"""

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import TrackedEvent
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.profiles import Profile


class ChangeKind(StrEnum):
    PROFILE_CREATED = "profile_created"
    PROFILE_UPDATED = "profile_updated"
    EXTENSION_SET = "extension_set"
    EXTENSION_REMOVED = "extension_removed"
    CONSENT_CHANGED = "consent_changed"
    EVENT_TRACKED = "event_tracked"
    EVENTS_IMPORTED = "events_imported"
    SEGMENT_ENTERED = "segment_entered"
    SEGMENT_LEFT = "segment_left"
    TIER_CHANGED = "tier_changed"
    PROFILES_MERGED = "profiles_merged"
    PROFILES_UNMERGED = "profiles_unmerged"
    PROFILE_ERASED = "profile_erased"


# Payload keys that carry personal data; a partner sees them only when its scope names them.
PERSONAL_FIELDS = ("traits", "identities")


class NewChange(BaseModel):
    """A change before the feed gave it its place (``seq``)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    kind: ChangeKind
    profile_id: str
    payload: dict[str, Any]
    shareable: bool  # the profile allowed partner sharing after this change
    segments: tuple[str, ...] = ()  # the segments the profile was in after this change


class Change(NewChange):
    seq: int

    @property
    def cursor(self) -> str:
        return encode_cursor(self.seq, self.at)


@dataclass(frozen=True)
class Standing:
    """What partners follow beyond the profile itself: its segments and its tier."""

    segments: tuple[str, ...]
    tier: str | None
    tier_reason: str
    policy_version: int | None


@dataclass(frozen=True)
class Scope:
    """What a caller may see of the feed. ``kinds``: None for every kind. ``fields``: the personal
    payload fields granted: ``traits`` (all), ``traits.<key>`` (one trait), ``identities``."""

    kinds: frozenset[ChangeKind] | None = None
    fields: frozenset[str] = frozenset()
    partner: bool = True  # only profiles that allow partner sharing, only the fields granted

    def admits(self, change: Change) -> bool:
        if self.partner and not change.shareable:
            return False
        return self.kinds is None or change.kind in self.kinds

    def project(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload without the personal fields this scope does not grant."""
        if not self.partner:
            return dict(payload)
        shown = {key: value for key, value in payload.items() if key not in PERSONAL_FIELDS}
        if "identities" in payload and "identities" in self.fields:
            shown["identities"] = payload["identities"]
        traits = payload.get("traits")
        if isinstance(traits, dict):
            if "traits" in self.fields:
                shown["traits"] = traits
            else:
                granted = {f.removeprefix("traits.") for f in self.fields if f.startswith("traits.")}
                if granted:
                    shown["traits"] = {key: value for key, value in traits.items() if key in granted}
        return shown


FULL_SCOPE = Scope(partner=False)


def profile_changes(
    before: Profile | None,
    after: Profile,
    standing_before: Standing | None,
    standing_after: Standing,
    now: datetime,
    *,
    partner_purpose: str,
    events: Sequence[TrackedEvent] = (),
    summarised: bool = False,
) -> list[NewChange]:
    """Every change worth telling between two states of one profile, in a stable order.

    ``summarised``: the events are told in one ``events_imported`` change, not one each.
    """
    consent = after.consents.get(partner_purpose)
    shareable = consent is not None and consent.granted

    def change(kind: ChangeKind, payload: dict[str, Any]) -> NewChange:
        return NewChange(
            at=now,
            kind=kind,
            profile_id=after.id,
            payload=payload,
            shareable=shareable,
            segments=standing_after.segments,
        )

    changes: list[NewChange] = []
    if before is None:
        changes.append(change(ChangeKind.PROFILE_CREATED, _profile_payload(after, ["identities", "traits"])))
    else:
        fields = [
            name
            for name, old, new in (
                ("identities", before.identities, after.identities),
                ("traits", before.traits, after.traits),
            )
            if old != new
        ]
        if fields:
            changes.append(change(ChangeKind.PROFILE_UPDATED, _profile_payload(after, fields)))
    previous_consents = {} if before is None else before.consents
    for purpose, given in sorted(after.consents.items()):
        if previous_consents.get(purpose) != given:
            payload = {"purpose": purpose, "granted": given.granted, "source": given.source}
            changes.append(change(ChangeKind.CONSENT_CHANGED, payload))
    changes += [change(kind, payload) for kind, payload in _extension_changes(before, after)]
    if summarised and events:
        changes.append(change(ChangeKind.EVENTS_IMPORTED, _summary_payload(events)))
    elif events:
        changes += [change(ChangeKind.EVENT_TRACKED, _event_payload(event)) for event in events]
    was = () if standing_before is None else standing_before.segments
    for key in standing_after.segments:
        if key not in was:
            changes.append(change(ChangeKind.SEGMENT_ENTERED, {"segment": key}))
    for key in was:
        if key not in standing_after.segments:
            changes.append(change(ChangeKind.SEGMENT_LEFT, {"segment": key}))
    old_tier = None if standing_before is None else standing_before.tier
    if standing_before is not None and old_tier != standing_after.tier:
        payload = {
            "from": old_tier,
            "to": standing_after.tier,
            "reason": standing_after.tier_reason,
            "policyVersion": standing_after.policy_version,
        }
        changes.append(change(ChangeKind.TIER_CHANGED, payload))
    return changes


def merge_change(
    winner: Profile, loser_id: str, standing: Standing, now: datetime, partner_purpose: str
) -> NewChange:
    consent = winner.consents.get(partner_purpose)
    return NewChange(
        at=now,
        kind=ChangeKind.PROFILES_MERGED,
        profile_id=winner.id,
        payload={"mergedFrom": loser_id, "version": winner.version},
        shareable=consent is not None and consent.granted,
        segments=standing.segments,
    )


def unmerge_changes(
    winner: Profile, loser: Profile, standings: tuple[Standing, Standing], now: datetime, partner_purpose: str
) -> list[NewChange]:
    """A merge was undone: one change on each side. The loser's names the identities it took
    back (personal: shown as its scope grants)."""
    payloads = (
        (winner, standings[0], {"unmergedProfileId": loser.id, "version": winner.version}),
        (
            loser,
            standings[1],
            {
                "unmergedFrom": winner.id,
                "version": loser.version,
                "identities": [{"type": i.type.value, "value": i.value} for i in loser.identities],
            },
        ),
    )
    changes = []
    for profile, standing, payload in payloads:
        consent = profile.consents.get(partner_purpose)
        changes.append(
            NewChange(
                at=now,
                kind=ChangeKind.PROFILES_UNMERGED,
                profile_id=profile.id,
                payload=payload,
                shareable=consent is not None and consent.granted,
                segments=standing.segments,
            )
        )
    return changes


def erasure_change(profile: Profile, now: datetime, partner_purpose: str) -> NewChange:
    """The profile was erased: partners that were told about it learn to delete it. ``shareable``
    is the profile's last partner-sharing answer; the payload is empty."""
    consent = profile.consents.get(partner_purpose)
    return NewChange(
        at=now,
        kind=ChangeKind.PROFILE_ERASED,
        profile_id=profile.id,
        payload={},
        shareable=consent is not None and consent.granted,
    )


def _profile_payload(profile: Profile, fields: list[str]) -> dict[str, Any]:
    return {
        "version": profile.version,
        "changed": fields,
        "identities": [{"type": i.type.value, "value": i.value} for i in profile.identities],
        "traits": profile.traits,
    }


def _extension_changes(before: Profile | None, after: Profile) -> list[tuple[ChangeKind, dict[str, Any]]]:
    old: Mapping[str, ExtensionGrant] = {} if before is None else before.extensions
    changes: list[tuple[ChangeKind, dict[str, Any]]] = []
    for name, grant in sorted(after.extensions.items()):
        if old.get(name) != grant:
            payload = {
                "name": name,
                "reason": grant.reason,
                "source": grant.source,
                "by": grant.by,
                "expiresAt": None if grant.expires_at is None else _iso(grant.expires_at),
            }
            changes.append((ChangeKind.EXTENSION_SET, payload))
    for name in sorted(old):
        if name not in after.extensions:
            changes.append((ChangeKind.EXTENSION_REMOVED, {"name": name}))
    return changes


def _summary_payload(events: Sequence[TrackedEvent]) -> dict[str, Any]:
    types: dict[str, int] = {}
    for event in events:
        types[event.type.value] = types.get(event.type.value, 0) + 1
    return {
        "events": len(events),
        "types": dict(sorted(types.items())),
        "from": _iso(min(event.at for event in events)),
        "to": _iso(max(event.at for event in events)),
    }


def _event_payload(event: TrackedEvent) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventId": event.id,
        "type": event.type.value,
        "channel": event.channel.value,
        "at": _iso(event.at),
    }
    if event.amount:
        payload["amount"] = event.amount
    if event.order_id is not None:
        payload["orderId"] = event.order_id
    if event.name is not None:
        payload["name"] = event.name
    return payload


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Cursors: opaque to clients; they hold the change's place and its time, so that a cursor the
# feed no longer keeps is told apart from one it does without reading the store.


def encode_cursor(seq: int, at: datetime) -> str:
    millis = int(at.timestamp() * 1000)
    return base64.urlsafe_b64encode(f"{seq}:{millis}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Cursor:
    seq: int
    at: datetime

    def expired(self, now: datetime, retention: timedelta) -> bool:
        return self.at < now - retention


def decode_cursor(cursor: str, field: str = "after") -> Cursor:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        seq, millis = (int(part) for part in text.split(":"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(field, "is not a cursor this feed gave out") from error
    if seq < 0 or millis < 0:
        raise InvalidInput(field, "is not a cursor this feed gave out")
    return Cursor(seq, datetime.fromtimestamp(millis / 1000, UTC))

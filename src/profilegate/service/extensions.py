"""The extension catalogue, and setting or removing extensions on a profile."""

from dataclasses import dataclass
from datetime import datetime

from profilegate.domain.errors import InvalidInput, NotPermitted, UnknownExtension
from profilegate.domain.extensions import (
    MANUAL,
    ExtensionDefinition,
    ExtensionGrant,
    capped_grants,
    check_extension_name,
    check_room_for,
)
from profilegate.domain.keys import Principal, Role
from profilegate.domain.profiles import Profile
from profilegate.domain.reasons import check_reason
from profilegate.domain.refs import ProfileRef
from profilegate.service.observers import UNOBSERVED, ProfileObserver
from profilegate.service.profiles import MAX_ATTEMPTS, ConcurrentModification, pause_before_retry
from profilegate.service.resolve import require_profile
from profilegate.storage.extension_definitions import DefineOutcome
from profilegate.storage.store import Repositories


@dataclass(frozen=True)
class ExtensionChanged:
    profile: Profile
    changed: bool


async def define_extension(
    repos: Repositories, definition: ExtensionDefinition
) -> tuple[ExtensionDefinition, DefineOutcome]:
    check_extension_name(definition.name)
    if not definition.description.strip():
        raise InvalidInput("description", "must not be empty")
    return definition, await repos.extension_definitions.save(definition)


async def set_extension(
    repos: Repositories,
    ref: ProfileRef,
    name: str,
    reason: str,
    expires_at: datetime | None,
    by: Principal,
    now: datetime,
    *,
    source: str = MANUAL,
    observer: ProfileObserver = UNOBSERVED,
) -> ExtensionChanged:
    """Set ``name`` on the profile. Setting it again while in force changes nothing.

    ``source``: who keeps it, ``manual`` or ``rule:<segment key>`` for a segment's extension.
    """
    definition = await _definition(repos, name, by)
    reason = check_reason(reason)
    if expires_at is not None:
        # BSON dates hold milliseconds: keep exactly what the store will, so that setting the
        # same expiry again compares equal to the stored one.
        expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expiresAt", "is not in the future")
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await pause_before_retry(attempt)
        profile = await require_profile(repos, ref)
        current = profile.extensions.get(name)
        if current is not None and _covers(current, reason, expires_at, source, now):
            return ExtensionChanged(profile, changed=False)
        grant = ExtensionGrant(
            name=name,
            at=now,
            by=by.name,
            reason=reason,
            source=source,
            expires_at=definition.expiry(now, expires_at),
        )
        check_room_for(profile.extensions, name, now)
        updated = _bump(profile, capped_grants({**profile.extensions, name: grant}, now), now)
        log = _log_entry("set", grant.name, reason, by, now)
        if await repos.profiles.replace_fields(
            updated, expected_version=profile.version, log=log, previous=profile
        ):
            await observer.changed(profile, updated, now)
            return ExtensionChanged(updated, changed=True)
    raise ConcurrentModification(ref.describe())


async def remove_extension(
    repos: Repositories,
    ref: ProfileRef,
    name: str,
    reason: str,
    by: Principal,
    now: datetime,
    *,
    only_source: str | None = None,
    observer: ProfileObserver = UNOBSERVED,
) -> ExtensionChanged:
    """Remove ``name`` from the profile; removing an absent or expired one changes nothing.

    ``only_source``: remove it only if it was set from this source (a rule never removes an
    extension an admin set by hand).
    """
    await _definition(repos, name, by)
    reason = check_reason(reason)
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await pause_before_retry(attempt)
        profile = await require_profile(repos, ref)
        current = profile.extensions.get(name)
        if current is None or not current.active(now):
            return ExtensionChanged(profile, changed=False)
        if only_source is not None and current.source != only_source:
            return ExtensionChanged(profile, changed=False)
        remaining = {key: grant for key, grant in profile.extensions.items() if key != name}
        updated = _bump(profile, remaining, now)
        log = _log_entry("remove", name, reason, by, now)
        if await repos.profiles.replace_fields(
            updated, expected_version=profile.version, log=log, previous=profile
        ):
            await observer.changed(profile, updated, now)
            return ExtensionChanged(updated, changed=True)
    raise ConcurrentModification(ref.describe())


async def _definition(repos: Repositories, name: str, by: Principal) -> ExtensionDefinition:
    definition = await repos.extension_definitions.get(name)
    if definition is None:
        raise UnknownExtension(name)
    if by.role is Role.PARTNER and not definition.partner_settable:
        raise NotPermitted(f"partners may not set or remove the extension {name!r}")
    return definition


def _covers(
    current: ExtensionGrant, reason: str, expires_at: datetime | None, source: str, now: datetime
) -> bool:
    """Would setting this again leave the profile as it is?"""
    same_expiry = expires_at is None or current.expires_at == expires_at
    return current.active(now) and current.reason == reason and current.source == source and same_expiry


def _bump(profile: Profile, extensions: dict[str, ExtensionGrant], now: datetime) -> Profile:
    return profile.model_copy(
        update={"extensions": extensions, "version": profile.version + 1, "updated_at": now}
    )


def _log_entry(action: str, name: str, reason: str, by: Principal, now: datetime) -> dict[str, object]:
    return {"action": action, "name": name, "reason": reason, "by": by.name, "at": now}

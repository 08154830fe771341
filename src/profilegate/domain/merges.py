"""Merging two profiles that turn out to be one person, and undoing it: deterministic and pure.

An unmerge gives each of the two their own again (docs/merges.md). The loser's document kept
its state at the merge; what the winner held before it took the loser in is in the merge
record (``WinnerBefore``, for merges logged since it is kept). What changed after the merge:

- identities added to the winner stay with it;
- a consent answer or an extension grant dated after the merge (``at`` later than the merge)
  stays with the winner; the winner's older ones go back to what it held before the merge;
- a trait key whose value changed (or that was added or removed) after the merge stays as
  it is on the winner; the others go back to the winner's value before the merge (or away,
  when only the loser had the key);
- for a merge logged without ``WinnerBefore``, the winner keeps its traits, consents and
  extensions as they are.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from profilegate.domain.aggregates import Aggregates, merge_aggregates
from profilegate.domain.consents import Consent
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.extensions import ExtensionGrant, active_extensions, capped_grants
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.traits import TraitLimits, merge_patch, validate_traits

# A survivor names the last this many profiles it took in (``mergedFrom``); the merge log
# (the ``merges`` collection) holds every one of them.
MAX_MERGED_FROM = 100


class MergeBlocked(DomainError):
    """Linking these identities would merge profiles that a guard keeps apart."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnmergeOutOfOrder(DomainError):
    """The profile the loser was merged into was merged on since: undo that merge first."""

    def __init__(self, loser: str, winner: str, survivor: str) -> None:
        super().__init__(
            f"profile {loser} was merged into {winner}, which was merged into {survivor} since: "
            f"unmerge {winner} first"
        )
        self.field = "profileId"
        self.first = winner


@dataclass(frozen=True)
class WinnerBefore:
    """What the winner held before it took the loser in, and its traits right after."""

    traits: dict[str, Any]
    consents: dict[str, Consent]
    extensions: dict[str, ExtensionGrant]
    merged_traits: dict[str, Any]


@dataclass(frozen=True)
class UndoMark:
    """An unmerge of the merge was started (and, once ``done``, finished)."""

    at: datetime
    by: str
    reason: str
    done: datetime | None = None


@dataclass(frozen=True)
class MergeRecord:
    """One logged merge: ``identities`` are the loser's keys as it was taken in."""

    loser: str
    winner: str
    at: datetime
    by: str
    reason: str
    identities: tuple[str, ...]
    before: WinnerBefore | None = None
    undo: UndoMark | None = None


def holds_loser(winner: Profile, record: MergeRecord) -> bool:
    """Whether the winner still holds what it took in by this merge (not yet restored)."""
    keys = set(record.identities)
    return record.loser in winner.merged_from or any(i.key in keys for i in winner.identities)


def choose_winner(profiles: Iterable[Profile]) -> Profile:
    """The oldest profile wins; equal ages fall back to the smaller id."""
    return min(profiles, key=lambda p: (p.created_at, p.id))


def check_identity_cap(profiles: Iterable[Profile], extra: Iterable[Identity], cap: int) -> None:
    union = {identity for profile in profiles for identity in profile.identities} | set(extra)
    if len(union) > cap:
        raise MergeBlocked(
            f"linking would give one profile {len(union)} identities, more than the cap of {cap}",
            "identities",
        )


def check_customer_ids(profiles: Iterable[Profile]) -> None:
    """Refuse to merge profiles that hold different customer ids: two accounts of the shop are
    two people until an admin says otherwise (``mergeProfiles``). Identities are unique, so two
    profiles that both hold one hold different ones."""
    holders = [_customer_ids(p) for p in profiles if _customer_ids(p)]
    if len(holders) > 1:
        held = sorted({value for ids in holders for value in ids})
        names = ", ".join(held[:-1]) + f" and {held[-1]}"
        raise MergeBlocked(
            f"profiles with different customer ids {names} are never merged automatically; "
            "an admin may merge them with mergeProfiles",
            "identities",
        )


def _customer_ids(profile: Profile) -> list[str]:
    return [i.value for i in profile.identities if i.type is IdentityType.CUSTOMER_ID]


def check_known_apart(profiles: Iterable[Profile]) -> None:
    """Refuse a merge of two or more profiles that each hold a known (not anonymous) identity:
    the storefront's guard, since its key proves nothing about who is asking."""
    known = [p for p in profiles if any(i.type is not IdentityType.ANONYMOUS_ID for i in p.identities)]
    if len(known) > 1:
        raise MergeBlocked(
            "a storefront key never merges two profiles that each hold a known identity; a server key can",
            "identities",
        )


def check_not_blocked(identities: Iterable[tuple[Identity, str]], blocked: frozenset[str]) -> None:
    """Refuse identifiers configured as shared (a POS device, a family account); names the field."""
    for identity, field in identities:
        if identity.key in blocked:
            raise MergeBlocked(
                f"{identity.key} is a blocked identifier (e.g. a shared device) and never links profiles",
                field,
            )


def absorb(
    winner: Profile, loser: Profile, *, now: datetime, retention_days: int, limits: TraitLimits
) -> Profile:
    """The winner after taking in the loser: aggregates summed, identities unioned, traits
    merged (the winner's values win), the newer consent answer per purpose, and per extension
    the grant that lasts longer (provenance kept)."""
    traits = merge_patch(loser.traits, winner.traits)
    try:
        validate_traits(traits, limits)
    except InvalidInput:
        traits = winner.traits  # the union would break the limits: keep the survivor's own
    return winner.model_copy(
        update={
            "identities": tuple(dict.fromkeys(winner.identities + loser.identities)),
            "traits": traits,
            "consents": _newer_consents(winner.consents, loser.consents),
            "extensions": capped_grants(_longer_grants(winner.extensions, loser.extensions), now),
            "aggregates": merge_aggregates(winner.aggregates, loser.aggregates, now, retention_days),
            "merged_from": (*winner.merged_from, loser.id)[-MAX_MERGED_FROM:],
            "version": winner.version + 1,
            "updated_at": now,
        }
    )


def winner_before(winner: Profile, merged: Profile) -> WinnerBefore:
    """What the merge record keeps of ``winner`` for an unmerge; ``merged``: it after the merge."""
    return WinnerBefore(
        traits=winner.traits,
        consents=winner.consents,
        extensions=winner.extensions,
        merged_traits=merged.traits,
    )


def loser_restored(loser: Profile, aggregates: Aggregates, now: datetime) -> Profile:
    """The loser on its own again: its state as at the merge, without the extensions expired
    since, with ``aggregates`` (the fold of its own events)."""
    return loser.model_copy(
        update={
            "merged_into": None,
            "extensions": active_extensions(loser.extensions, now),
            "aggregates": aggregates,
            "version": loser.version + 1,
            "updated_at": now,
        }
    )


def winner_restored(winner: Profile, record: MergeRecord, aggregates: Aggregates, now: datetime) -> Profile:
    """The winner without the loser: its identities, ``mergedFrom`` and (with ``record.before``)
    traits, consents and extensions by the rules in the module's text."""
    lost = set(record.identities)
    before = record.before
    update: dict[str, Any] = {
        "identities": tuple(i for i in winner.identities if i.key not in lost),
        "merged_from": tuple(i for i in winner.merged_from if i != record.loser),
        "aggregates": aggregates,
        "version": winner.version + 1,
        "updated_at": now,
    }
    if before is not None:
        update["traits"] = traits_back(winner.traits, before)
        update["consents"] = _dated_back(winner.consents, before.consents, record.at)
        update["extensions"] = active_extensions(
            _dated_back(winner.extensions, before.extensions, record.at), now
        )
    return winner.model_copy(update=update)


def traits_back(current: dict[str, Any], before: WinnerBefore) -> dict[str, Any]:
    """Each top-level key unchanged since the merge gets the winner's value from before it."""
    restored = dict(current)
    for key, merged in before.merged_traits.items():
        if key in current and current[key] == merged:
            if key in before.traits:
                restored[key] = before.traits[key]
            else:
                del restored[key]
    return restored


def _dated_back[T: (Consent, ExtensionGrant)](
    current: Mapping[str, T], before: Mapping[str, T], merged_at: datetime
) -> dict[str, T]:
    """Answers dated after the merge stay; the older ones are the winner's from before it (a
    name the winner did not have then goes; one removed since stays removed)."""
    restored: dict[str, T] = {}
    for name, value in current.items():
        if value.at > merged_at:
            restored[name] = value
        elif name in before:
            restored[name] = before[name]
    return restored


def _newer_consents(ours: dict[str, Consent], theirs: dict[str, Consent]) -> dict[str, Consent]:
    merged = dict(ours)
    for purpose, consent in theirs.items():
        current = merged.get(purpose)
        if current is None or consent.at > current.at:
            merged[purpose] = consent
    return merged


def _longer_grants(
    ours: dict[str, ExtensionGrant], theirs: dict[str, ExtensionGrant]
) -> dict[str, ExtensionGrant]:
    merged = dict(ours)
    for name, grant in theirs.items():
        current = merged.get(name)
        if current is None or _lasts_longer(grant, current):
            merged[name] = grant
    return merged


def _lasts_longer(candidate: ExtensionGrant, current: ExtensionGrant) -> bool:
    if current.expires_at is None:
        return False
    return candidate.expires_at is None or candidate.expires_at > current.expires_at

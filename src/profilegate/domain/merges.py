"""Merging two profiles that turn out to be one person: deterministic and pure."""

from collections.abc import Iterable
from datetime import datetime

from profilegate.domain.aggregates import merge_aggregates
from profilegate.domain.consents import Consent
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.extensions import ExtensionGrant, capped_grants
from profilegate.domain.identities import Identity
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

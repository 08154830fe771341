"""Merging two profiles that turn out to be one person: deterministic and pure."""

from collections.abc import Iterable
from datetime import datetime

from profilegate.domain.aggregates import merge_aggregates
from profilegate.domain.consents import Consent
from profilegate.domain.errors import DomainError, InvalidInput
from profilegate.domain.extensions import ExtensionGrant, capped_grants
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

"""GDPR: export everything held about a person (art. 15/20), and erase it (art. 17).

A person is a surviving profile and every profile merged into it, at any depth.

Erasure has no transaction to lean on (DESIGN sec. 2); its steps are ordered so that a crash
anywhere and a retry (with the same or any other reference to the person) finish the job:

1. tombstones for every identity and profile id (hashed), naming the profile being erased,
   so nothing recreates the person from now on and a retry finds the profile by them;
2. the events of every profile, in every segment of the log;
3. the change-feed entries' payloads, emptied and marked erased (their places stay);
4. the merge records;
5. the identity keys;
6. a ``PROFILE_ERASED`` change, so partners delete what they hold;
7. the profiles and their checkout documents, merged-away ones first, the survivor last
   (until it is gone, a retry reaches everything from it);
8. the tombstones stop naming the profile: they keep hashes, the time and the reason only.

Each step is idempotent. An erased person asked for again answers "erased" and writes nothing.
Limits: an event a concurrent request resolved to the person just before step 2 may still be
logged (``rebuild-aggregates`` counts it as belonging to no profile); a merge a crash left
between marking the loser and the winner taking it in is not followed.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from profilegate.domain.changes import Change, ChangeKind
from profilegate.domain.erasure import profile_key, tombstone_id
from profilegate.domain.errors import ProfileNotFound
from profilegate.domain.money import Currencies
from profilegate.domain.profiles import Profile
from profilegate.domain.reasons import check_reason
from profilegate.domain.refs import ProfileRef
from profilegate.service.resolve import MAX_MERGE_HOPS, resolve_chain
from profilegate.service.tombstones import tombstone_for
from profilegate.storage.documents import Document
from profilegate.storage.store import Repositories


class ErasureObserver(Protocol):
    async def erased(self, profile: Profile, now: datetime) -> None:
        """``profile`` and the profiles merged into it are being erased."""


@dataclass(frozen=True)
class Erased:
    """What an erasure removed; ``already_erased``: nothing was left to remove."""

    profile_id: str | None
    erased_at: datetime
    already_erased: bool
    profiles: int = 0
    identities: int = 0
    events: int = 0
    merges: int = 0
    changes: int = 0


async def erase_profile(
    repos: Repositories, ref: ProfileRef, reason: str, now: datetime, *, observer: ErasureObserver
) -> Erased:
    """Erase the person ``ref`` names; see the module's text for the steps."""
    reason = check_reason(reason)
    survivor, _ = await resolve_chain(repos, ref)
    if survivor is None:
        tombstone = await tombstone_for(repos, ref)
        if tombstone is None:
            raise ProfileNotFound(ref.describe())
        if tombstone.erasing is None:
            return Erased(profile_id=ref.id, erased_at=tombstone.erased_at, already_erased=True)
        survivor = await repos.profiles.get(tombstone.erasing)
        if survivor is None:  # a crash after the last profile went: only step 8 is left
            await repos.tombstones.settle(tombstone.erasing)
            return Erased(profile_id=tombstone.erasing, erased_at=tombstone.erased_at, already_erased=True)
    return await _erase(repos, survivor, reason, now, observer)


async def _erase(
    repos: Repositories, survivor: Profile, reason: str, now: datetime, observer: ErasureObserver
) -> Erased:
    person = await merged_profiles(repos, survivor)
    ids = [profile.id for profile in person]
    keys = sorted({identity.key for profile in person for identity in profile.identities})
    hashes = [tombstone_id(key) for key in keys] + [tombstone_id(profile_key(i)) for i in ids]
    await repos.tombstones.bury(hashes, survivor.id, now, reason)
    events = await repos.events.delete_for_profiles(ids)
    changes = await repos.changes.blank_for_profiles(ids, keep=ChangeKind.PROFILE_ERASED)
    merges = await repos.merges.delete_involving(ids)
    released = [await repos.identity_keys.release_held_by(key, ids) for key in keys]
    await observer.erased(survivor, now)
    deleted = [await repos.profiles.delete(profile_id) for profile_id in ids]
    await repos.tombstones.settle(survivor.id)
    return Erased(
        profile_id=survivor.id,
        erased_at=now,
        already_erased=False,
        profiles=sum(deleted),
        identities=sum(released),
        events=events,
        merges=merges,
        changes=changes,
    )


async def merged_profiles(repos: Repositories, survivor: Profile) -> list[Profile]:
    """The survivor and every profile merged into it, at any depth: merged-away ones first
    (the deepest first), the survivor last."""
    ordered: list[Profile] = []
    seen = {survivor.id}

    async def visit(profile: Profile, depth: int) -> None:
        if depth > MAX_MERGE_HOPS:
            raise RuntimeError(f"profiles merged into {survivor.id} go deeper than {MAX_MERGE_HOPS}")
        for loser_id in profile.merged_from:
            loser = await repos.profiles.get(loser_id)
            if loser is not None and loser.merged_into == profile.id and loser.id not in seen:
                seen.add(loser.id)
                await visit(loser, depth + 1)
        ordered.append(profile)

    await visit(survivor, 0)
    return ordered


async def export_profile(
    repos: Repositories, ref: ProfileRef, now: datetime, currencies: Currencies
) -> dict[str, Any]:
    """Everything held about the person ``ref`` names, as one JSON-ready document."""
    survivor, _ = await resolve_chain(repos, ref)
    if survivor is None:
        raise ProfileNotFound(ref.describe())
    person = await merged_profiles(repos, survivor)
    ids = [profile.id for profile in person]
    merged = [profile for profile in person if profile.id != survivor.id]
    return {
        "exportedAt": _iso(now),
        "profileId": survivor.id,
        "profile": await _profile_export(repos, survivor, currencies),
        "mergedProfileIds": [profile.id for profile in merged],
        "mergedProfiles": [await _profile_export(repos, profile, currencies) for profile in merged],
        "events": [
            _plain_document(_event_export(document)) for document in await repos.events.for_profiles(ids)
        ],
        "merges": [
            _plain_document(_merge_export(document)) for document in await repos.merges.involving(ids)
        ],
        "changes": [_change_export(change) for change in await repos.changes.for_profiles(ids)],
    }


async def _profile_export(repos: Repositories, profile: Profile, currencies: Currencies) -> dict[str, Any]:
    aggregates = profile.aggregates
    average = aggregates.average_order_value()
    return _plain_document(
        {
            "id": profile.id,
            "identities": [{"type": i.type.value, "value": i.value} for i in profile.identities],
            "traits": profile.traits,
            "consents": {
                purpose: {"granted": c.granted, "at": c.at, "source": c.source}
                for purpose, c in sorted(profile.consents.items())
            },
            "extensions": {
                name: {
                    "at": g.at,
                    "by": g.by,
                    "reason": g.reason,
                    "source": g.source,
                    "expiresAt": g.expires_at,
                }
                for name, g in sorted(profile.extensions.items())
            },
            "extensionLog": [_without_id(entry) for entry in await repos.profiles.extension_log(profile.id)],
            "aggregates": {
                "currency": currencies.base,
                "orders": aggregates.orders,
                "grossSpend": currencies.format(aggregates.gross),
                "returned": currencies.format(aggregates.returned),
                "cancelled": currencies.format(aggregates.cancelled),
                "netSpend": currencies.format(aggregates.net),
                "averageOrderValue": None if average is None else currencies.format(average),
                "returnedOrders": aggregates.returned_orders,
                "cancelledOrders": aggregates.cancelled_orders,
                "eventCounts": dict(sorted(aggregates.counts.items())),
                "channels": dict(sorted(aggregates.channels.items())),
                "categories": dict(sorted(aggregates.categories.items())),
                "firstSeen": aggregates.first_seen,
                "lastSeen": aggregates.last_seen,
                "lastOrderAt": aggregates.last_order_at,
            },
            "mergedInto": profile.merged_into,
            "mergedFrom": list(profile.merged_from),
            "version": profile.version,
            "createdAt": profile.created_at,
            "updatedAt": profile.updated_at,
        }
    )


def _event_export(document: Document) -> Document:
    exported = {"id": document["_id"], **_without_id(document)}
    exported["categories"] = [list(pair) for pair in document.get("categories", [])]
    return exported


def _merge_export(document: Document) -> Document:
    """A merge as it happened; not the copy of the winner's traits, consents and extensions kept
    for an unmerge (after one, winner and loser are two people, each exported on their own)."""
    kept = {key: value for key, value in _without_id(document).items() if key != "winnerBefore"}
    return {"loser": document["_id"], **kept}


def _change_export(change: Change) -> dict[str, Any]:
    return _plain_document(
        {
            "cursor": change.cursor,
            "kind": change.kind.name,
            "at": change.at,
            "profileId": change.profile_id,
            "payload": change.payload,
        }
    )


def _without_id(document: Document) -> Document:
    return {key: value for key, value in document.items() if key != "_id"}


def _plain_document(document: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in document.items()}


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601 in UTC, containers walked."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

"""The ``profiles`` collection: one document per shopper, addressed by its string ``_id``.

Beside each profile, ``profile_checkout`` holds what a tier is computed from (net spend per
day, packed into one binary field, the extensions and the merge pointer), so the checkout
reads a small document whatever the customer's history: the embedded store decodes a whole
document on every read, at a cost per element (measured: 365 day buckets ~30 ms, the same
spend packed ~2 ms). It is derived state, rewritten after every write of the profile and
guarded by the profile's version, so an older write never overwrites a newer one, also when
two writes of one profile race (``refresh_checkout``). A write
that died between the two leaves it one version behind until the profile's next write, or
a replay of the same events (which rewrites it), or ``rebuild-aggregates``.

The same payload is carried on each ``identity_keys`` document the profile holds, under
``checkout``, so a checkout by identity (the storefront's usual question) is the one ``_id``
read that resolves the identity (``checkout_by_identity``); a guest's is the one read that
finds nothing. What is carried is what a tier is computed *from* (net spend per day and the
extensions, with their expiries), never a tier: the tier is evaluated at read under the active
policy and the moment of the read, so window and extension expiries and a newly activated policy
(within ``tier_policy_cache_seconds``) apply without any write. A key's copy is written only while
the key names the profile (the filter holds ``profileId``) and only by a newer version; a key
that changes hands (a merge, an orphan taken over) loses its copy in the same update, and an
erased identity's key document is deleted whole. A key is created with the copy of the new
profile it is claimed for; one without a copy (after it changed hands, before the new owner's next
write) answers through the profile's checkout document: two reads, the same answer. A tracking
write rewrites the keys' copies only when the spend per day changed; a copy left behind by a
write that died is rewritten by the replay of its events, the profile's next write that changes
what a tier reads, or ``rebuild-aggregates``.
"""

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from profilegate.domain.aggregates import Aggregates
from profilegate.domain.consents import Consent
from profilegate.domain.extensions import ExtensionGrant
from profilegate.domain.identities import Identity, IdentityType
from profilegate.domain.profiles import Profile
from profilegate.domain.tiers import TierPolicy, spend_by_day
from profilegate.storage.aggregates import (
    aggregates_from_document,
    aggregates_to_document,
    daily_to_document,
    day_document,
    pack_spend,
    recent_to_document,
    unpack_spend,
)
from profilegate.storage.bulk_errors import only_duplicates
from profilegate.storage.command_limits import MAX_SET_PATHS, MAX_UNSET_PATHS, chunked
from profilegate.storage.documents import Collection, Document
from profilegate.storage.partitions import PartitionedCollection
from profilegate.storage.tier_distribution import tier_count_pipeline, tier_counts

EXTENSION_LOG_LENGTH = 50
# What a tier needs of a profile: the checkout reads these and skips the rest.
LOYALTY_FIELDS = {"daily": 1, "extensions": 1, "mergedInto": 1}


class MergePointers(NamedTuple):
    id: str
    merged_into: str | None
    merged_from: tuple[str, ...]


class LoyaltyView(NamedTuple):
    """The part of a profile a tier is computed from."""

    id: str
    spend: dict[int, int]
    extensions: dict[str, ExtensionGrant]
    merged_into: str | None


class ProfileWrites(Protocol):
    """Told of every profile write the repository applies (derived state kept on write)."""

    async def written(
        self, profile: Profile, previous: Profile | None = None, *, created: bool = False
    ) -> None:
        """``previous``: the profile the write replaced, when the writer had it; ``created``:
        the write inserted it."""

    async def deleted(self, profile_id: str) -> None: ...


class _Unfollowed:
    async def written(
        self, profile: Profile, previous: Profile | None = None, *, created: bool = False
    ) -> None:
        return None

    async def deleted(self, profile_id: str) -> None:
        return None


class Activity(NamedTuple):
    """A tracking write: ``profile`` as it becomes, over ``previous`` as it was read."""

    profile: Profile
    previous: Profile


class ProfileRepository:
    """``identity_keys``: where the checkout payload is carried; ``IdentityKeyRepository`` owns
    the rest of those documents (which profile a key names)."""

    def __init__(
        self,
        collection: PartitionedCollection,
        checkout: PartitionedCollection,
        identity_keys: PartitionedCollection,
    ) -> None:
        self._profiles = collection
        self._checkout = checkout
        self._keys = identity_keys
        self._follower: ProfileWrites = _Unfollowed()

    def follow(self, follower: ProfileWrites) -> None:
        """Tell ``follower`` of every write applied from now on (one follower; a later one wins)."""
        self._follower = follower

    async def get(self, profile_id: str) -> Profile | None:
        found = await self._profiles.for_id(profile_id).find_one({"_id": profile_id})
        return None if found is None else profile_from_document(found)

    async def get_many(self, profile_ids: Iterable[str]) -> dict[str, Profile]:
        """The stored profiles among ``profile_ids``, by id: one read per partition."""
        found: dict[str, Profile] = {}
        for collection, wanted in self._profiles.by_partition(profile_ids).items():
            for chunk in chunked(wanted):
                async for document in collection.find({"_id": {"$in": chunk}}):
                    found[document["_id"]] = profile_from_document(document)
        return found

    async def loyalty_view(self, profile_id: str) -> LoyaltyView | None:
        """What a tier needs, from the small checkout document (the profile's, if it has none)."""
        found = await self._checkout.for_id(profile_id).find_one({"_id": profile_id})
        if found is not None:
            return loyalty_view_from_checkout(profile_id, found)
        found = await self._profiles.for_id(profile_id).find_one({"_id": profile_id}, LOYALTY_FIELDS)
        if found is None:
            return None
        return LoyaltyView(
            id=profile_id,
            spend=spend_by_day(aggregates_from_document(found).daily),
            extensions=extensions_from_document(found),
            merged_into=found.get("mergedInto"),
        )

    async def checkout_view(self, profile_id: str) -> LoyaltyView | None:
        """The profile's checkout document as stored, without falling back to the profile."""
        found = await self._checkout.for_id(profile_id).find_one({"_id": profile_id})
        return None if found is None else loyalty_view_from_checkout(profile_id, found)

    async def checkout_by_identity(self, key: str) -> tuple[str, LoyaltyView | None] | None:
        """The profile the identity ``key`` names and the checkout payload its key carries (None
        before the profile's first write since the key was claimed or changed hands); None for
        an identity nobody holds. One ``_id`` read either way."""
        found = await self._keys.for_id(key).find_one({"_id": key}, {"profileId": 1, "checkout": 1})
        if found is None:
            return None
        owner = str(found["profileId"])
        carried = found.get("checkout")
        return owner, None if carried is None else loyalty_view_from_checkout(owner, carried)

    async def refresh_checkout(self, profile: Profile, *, keys: bool = True) -> None:
        """Write the profile's checkout document unless a newer version's is there already, and
        (``keys``) the same payload onto the identity keys the profile holds."""
        document = checkout_document(profile)
        del document["_id"]
        await self._refresh_checkout_document(profile, document)
        if keys:
            await self.carry_checkout(profile, document)

    async def carry_checkout(self, profile: Profile, payload: Document | None = None) -> None:
        """Copy the checkout payload onto each identity key that still names ``profile``, unless
        a newer version's is there: one unordered bulk update per collection the keys live in
        (one command in the MongoDB layout). A key never comes to exist here."""
        await self.carry_checkouts([(profile, payload if payload is not None else checkout_payload(profile))])

    async def carry_checkouts(self, carried: Sequence[tuple[Profile, Document]]) -> None:
        """``carry_checkout`` for many profiles, each with its payload: one bulk update per
        collection their keys live in, for all of them together."""
        updates: dict[str, tuple[Collection, list[UpdateOne]]] = {}
        for profile, payload in carried:
            for identity in profile.identities:
                collection = self._keys.for_id(identity.key)
                guarded = {
                    "_id": identity.key,
                    "profileId": profile.id,
                    "$or": [{"checkout": None}, {"checkout.version": {"$lt": profile.version}}],
                }
                entry = updates.setdefault(collection.name, (collection, []))
                entry[1].append(UpdateOne(guarded, {"$set": {"checkout": payload}}))
        for collection, operations in updates.values():
            await collection.bulk_write(operations, ordered=False)

    async def _refresh_checkout_document(self, profile: Profile, document: Document) -> None:
        collection = self._checkout.for_id(profile.id)
        older = {"_id": profile.id, "version": {"$lt": profile.version}}
        try:
            await collection.update_one(older, {"$set": document}, upsert=True)
        except DuplicateKeyError:
            # No older document matched, but one with this _id was there by the time the upsert
            # inserted: either a newer version's (it stays) or a racing first write of an older
            # version, inserted between our match and our insert. MongoDB retries such an upsert
            # only when its filter is equalities on the unique key alone, which ours is not
            # (https://www.mongodb.com/docs/manual/reference/method/db.collection.update/#upsert-with-duplicate-values),
            # so the update is made again, now on the document that exists, still only if older.
            await collection.update_one(older, {"$set": document})

    async def tier_counts(self, policy: TierPolicy, now: datetime) -> dict[str | None, int]:
        """Profiles (not merged away) per tier under ``policy``, counted by the database."""
        pipeline = tier_count_pipeline(policy, now)
        grouped: list[Document] = []
        for partition in self._profiles.all():
            grouped.extend([group async for group in await partition.aggregate(pipeline)])
        return tier_counts(policy, grouped)

    async def count_matching(self, query: Document) -> int:
        """Profiles (not merged away) matching ``query``, counted by the database."""
        live = {"$and": [query, {"mergedInto": None}]}
        return sum([await partition.count_documents(live) for partition in self._profiles.all()])

    async def matching_page(self, query: Document, first: int, after: str | None) -> list[Profile]:
        """Up to ``first`` matching profiles in ``_id`` order after ``after``: each partition
        returns its next ``first`` in order, and the pages are merged."""
        clauses = [query, {"mergedInto": None}]
        if after is not None:
            clauses.append({"_id": {"$gt": after}})
        found: list[Document] = []
        for partition in self._profiles.all():
            cursor = partition.find({"$and": clauses}).sort("_id", 1).limit(first)
            found.extend([document async for document in cursor])
        found.sort(key=lambda document: str(document["_id"]))
        return [profile_from_document(document) for document in found[:first]]

    async def matching(self, query: Document) -> AsyncIterator[Profile]:
        """Every matching profile, partition by partition, streamed in batches."""
        for partition in self._profiles.all():
            async for document in partition.find({"$and": [query, {"mergedInto": None}]}).batch_size(500):
                yield profile_from_document(document)

    async def by_ids(self, profile_ids: list[str]) -> dict[str, Profile]:
        """The stored profiles among ``profile_ids``: one read per collection that holds any."""
        routed: dict[int, list[str]] = {}
        for profile_id in profile_ids:
            routed.setdefault(self._profiles.route(profile_id), []).append(profile_id)
        collections, found = self._profiles.all(), dict[str, Profile]()
        for index, ids in routed.items():
            for chunk in chunked(ids):
                async for document in collections[index].find({"_id": {"$in": chunk}}):
                    found[str(document["_id"])] = profile_from_document(document)
        return found

    async def insert(self, profile: Profile) -> None:
        """Store a new profile and its checkout document; its keys carry the payload from their
        claim (``IdentityKeyRepository.claim``)."""
        await self._profiles.for_id(profile.id).insert_one(profile_to_document(profile))
        await self.refresh_checkout(profile, keys=False)
        await self._follower.written(profile, created=True)

    async def replace_fields(
        self,
        profile: Profile,
        *,
        expected_version: int,
        unset: tuple[str, ...] = (),
        log: Mapping[str, Any] | None = None,
        previous: Profile | None = None,
    ) -> bool:
        """Write ``profile`` over the stored one if it is still at ``expected_version``.

        One atomic single-document update: identities, traits, consents and extensions are
        written whole, the version is bumped, and an optional entry is appended to the
        bounded extension log. Returns False when another writer got there first.
        ``previous``: the stored profile being replaced, if the caller has it (what is derived
        from the profile is then rewritten only where it changed).
        """
        document = profile_to_document(profile)
        fields = {key: document[key] for key in _MUTABLE_FIELDS}
        update: Document = {"$set": fields}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        if log is not None:
            update["$push"] = {"extensionLog": {"$each": [dict(log)], "$slice": -EXTENSION_LOG_LENGTH}}
        result = await self._profiles.for_id(profile.id).update_one(
            {"_id": profile.id, "version": expected_version}, update
        )
        return await self._written(profile, result.matched_count == 1, previous)

    async def _written(
        self, profile: Profile, written: bool, previous: Profile | None = None, *, keys: bool = True
    ) -> bool:
        """After a write: the derived documents (checkout, then what the follower keeps)."""
        if written:
            await self.refresh_checkout(profile, keys=keys)
            await self._follower.written(profile, previous)
        return written

    async def write_activity(self, profile: Profile, *, expected_version: int, previous: Aggregates) -> bool:
        """Write what tracking changed: the aggregates, the replay guard and only the day buckets
        that differ from ``previous``, in one atomic update guarded on the version.

        The identity keys' checkout copies are rewritten only when the net spend per day changed
        (tracking changes nothing else a tier reads): a page view costs no write to them. A copy
        left behind by a write that died is rewritten by the replay of its events."""
        before, after = previous.daily, profile.aggregates.daily
        fields: Document = {
            "aggregates": aggregates_to_document(profile.aggregates),
            "recentEventIds": recent_to_document(profile.aggregates),
            "version": profile.version,
            "updatedAt": profile.updated_at,
        }
        result = await self._profiles.for_id(profile.id).update_one(
            {"_id": profile.id, "version": expected_version}, _tracking_update(fields, profile, previous)
        )
        spend_changed = spend_by_day(before) != spend_by_day(after)
        before_write = profile.model_copy(update={"aggregates": previous})
        return await self._written(profile, result.matched_count == 1, before_write, keys=spend_changed)

    async def insert_tracked(self, profiles: Sequence[Profile]) -> None:
        """Create profiles that tracking just made, their first events applied: one insert per
        partition; a checkout document only for those whose checkout content is not empty (the
        checkout falls back to the profile when it has none)."""
        for collection, ids in self._profiles.by_partition(p.id for p in profiles).items():
            wanted = set(ids)
            await collection.insert_many([profile_to_document(p) for p in profiles if p.id in wanted])
        await self.refresh_checkouts([p for p in profiles if _checkout_content(p) != _EMPTY_CHECKOUT])
        for profile in profiles:
            await self._follower.written(profile, created=True)

    async def write_activities(self, activities: Sequence[Activity]) -> set[str]:
        """Write what tracking changed of many profiles, each guarded on the version it was read
        at, in one bulk write per partition; return the ids written (a rival writer's profile
        is not). A checkout document is rewritten only where its content changed."""
        stamp = uuid.uuid4().hex
        grouped: dict[str, list[Activity]] = {}
        for activity in activities:
            grouped.setdefault(activity.profile.id, []).append(activity)
        written: set[str] = set()
        for collection, ids in self._profiles.by_partition(grouped).items():
            chosen = [grouped[profile_id][0] for profile_id in ids]
            operations = [_activity_update(activity, stamp) for activity in chosen]
            result = await collection.bulk_write(operations, ordered=False)
            if result.matched_count == len(operations):
                written.update(ids)
            else:
                written.update(await _stamped(collection, ids, stamp))
        await self.refresh_checkouts(
            [a.profile for a in activities if a.profile.id in written and _checkout_moved(a)]
        )
        told: set[str] = set()
        for activity in activities:
            if activity.profile.id in written and activity.profile.id not in told:
                told.add(activity.profile.id)
                await self._follower.written(activity.profile, activity.previous)
        return written

    async def refresh_checkouts(self, profiles: Sequence[Profile]) -> None:
        """``refresh_checkout`` for many profiles: one bulk write per partition."""
        for collection, ids in self._checkout.by_partition(p.id for p in profiles).items():
            wanted = set(ids)
            chosen = [p for p in profiles if p.id in wanted]
            operations = [_checkout_update(p, upsert=True) for p in chosen]
            try:
                await collection.bulk_write(operations, ordered=False)
            except BulkWriteError as error:
                # The same race as in refresh_checkout: made again, without the upsert.
                if not only_duplicates(error):
                    raise
                failed = [chosen[e["index"]] for e in error.details["writeErrors"]]
                again = [_checkout_update(p, upsert=False) for p in failed]
                await collection.bulk_write(again, ordered=False)
        await self.carry_checkouts([(profile, checkout_payload(profile)) for profile in profiles])

    async def extension_log(self, profile_id: str) -> list[Document]:
        found = await self._profiles.for_id(profile_id).find_one({"_id": profile_id}, {"extensionLog": 1})
        return [] if found is None else list(found.get("extensionLog", []))

    async def delete(self, profile_id: str) -> bool:
        """Delete the profile's checkout document, then the profile; whether the profile was there."""
        await self._checkout.for_id(profile_id).delete_one({"_id": profile_id})
        result = await self._profiles.for_id(profile_id).delete_one({"_id": profile_id})
        await self._follower.deleted(profile_id)
        return result.deleted_count == 1

    async def merge_pointers(self) -> AsyncIterator[MergePointers]:
        """Every profile's id and merge pointers, partition by partition (nothing else is read)."""
        for collection in self._profiles.all():
            async for found in collection.find({}, {"mergedInto": 1, "mergedFrom": 1}):
                yield MergePointers(
                    found["_id"], found.get("mergedInto"), tuple(found.get("mergedFrom") or ())
                )


def _activity_update(activity: Activity, stamp: str) -> UpdateOne:
    """``write_activity``'s update as a bulk operation, with ``stamp`` telling whose write it was."""
    profile, previous = activity
    fields: Document = {
        "aggregates": aggregates_to_document(profile.aggregates),
        "recentEventIds": recent_to_document(profile.aggregates),
        "version": profile.version,
        "updatedAt": profile.updated_at,
        "lastWrite": stamp,
    }
    return UpdateOne(
        {"_id": profile.id, "version": previous.version},
        _tracking_update(fields, profile, previous.aggregates),
    )


def _tracking_update(fields: Document, profile: Profile, previous: Aggregates) -> Document:
    """``fields`` and the day buckets that differ from ``previous``: each changed bucket by its
    own path, and the pruned ones unset, while that fits one update of the embedded store
    (``command_limits``); past that, ``daily`` is set whole (the update is guarded on the
    version, so setting the whole field is as safe as setting its parts)."""
    before, after = previous.daily, profile.aggregates.daily
    changed = {f"daily.{day}": day_document(b) for day, b in after.items() if before.get(day) != b}
    pruned = {f"daily.{day}": "" for day in before.keys() - after.keys()}
    if len(fields) + len(changed) > MAX_SET_PATHS or len(pruned) > MAX_UNSET_PATHS:
        return {"$set": {**fields, "daily": daily_to_document(profile.aggregates)}}
    update: Document = {"$set": {**fields, **changed}}
    if pruned:
        update["$unset"] = pruned
    return update


async def _stamped(collection: Collection, ids: list[str], stamp: str) -> set[str]:
    """Of ``ids``, those whose last write carries ``stamp`` (a bulk write tells only how many matched)."""
    stamped: set[str] = set()
    for chunk in chunked(ids):
        cursor = collection.find({"_id": {"$in": chunk}, "lastWrite": stamp}, {"_id": 1})
        stamped.update([document["_id"] async for document in cursor])
    return stamped


def _checkout_update(profile: Profile, *, upsert: bool) -> UpdateOne:
    document = checkout_document(profile)
    del document["_id"]
    return UpdateOne(
        {"_id": profile.id, "version": {"$lt": profile.version}}, {"$set": document}, upsert=upsert
    )


def _checkout_content(profile: Profile) -> Document:
    document = checkout_document(profile)
    del document["_id"], document["version"]
    return document


_EMPTY_CHECKOUT: Document = {"spend": pack_spend({}), "extensions": {}, "mergedInto": None}


def _checkout_moved(activity: Activity) -> bool:
    return _checkout_content(activity.profile) != _checkout_content(activity.previous)


_MUTABLE_FIELDS = (
    "identities",
    "traits",
    "consents",
    "extensions",
    "aggregates",
    "daily",
    "recentEventIds",
    "mergedInto",
    "mergedFrom",
    "version",
    "updatedAt",
)


def profile_to_document(profile: Profile) -> Document:
    return {
        "_id": profile.id,
        "identities": [{"type": i.type.value, "value": i.value} for i in profile.identities],
        "traits": profile.traits,
        "consents": {
            purpose: {"granted": c.granted, "at": c.at, "source": c.source}
            for purpose, c in profile.consents.items()
        },
        "extensions": extensions_to_document(profile.extensions),
        "aggregates": aggregates_to_document(profile.aggregates),
        "daily": daily_to_document(profile.aggregates),
        "recentEventIds": recent_to_document(profile.aggregates),
        "mergedInto": profile.merged_into,
        "mergedFrom": list(profile.merged_from),
        "version": profile.version,
        "createdAt": profile.created_at,
        "updatedAt": profile.updated_at,
    }


def checkout_document(profile: Profile) -> Document:
    """What the checkout reads of a profile: net spend per day packed, extensions, merge pointer."""
    return {"_id": profile.id, **checkout_payload(profile)}


def checkout_payload(profile: Profile) -> Document:
    """The checkout document without its ``_id``: what an identity key carries."""
    return {
        "spend": pack_spend(spend_by_day(profile.aggregates.daily)),
        "extensions": extensions_to_document(profile.extensions),
        "mergedInto": profile.merged_into,
        "version": profile.version,
    }


def loyalty_view_from_checkout(profile_id: str, document: Document) -> LoyaltyView:
    return LoyaltyView(
        id=profile_id,
        spend=unpack_spend(document["spend"]),
        extensions=extensions_from_document(document),
        merged_into=document.get("mergedInto"),
    )


def profile_from_document(document: Document) -> Profile:
    return Profile(
        id=document["_id"],
        identities=tuple(
            Identity(type=IdentityType(i["type"]), value=i["value"]) for i in document.get("identities", [])
        ),
        traits=document.get("traits", {}),
        consents={
            purpose: Consent(purpose=purpose, granted=c["granted"], at=c["at"], source=c["source"])
            for purpose, c in document.get("consents", {}).items()
        },
        extensions=extensions_from_document(document),
        aggregates=aggregates_from_document(document),
        merged_into=document.get("mergedInto"),
        merged_from=tuple(document.get("mergedFrom", ())),
        version=document.get("version", 1),
        created_at=document["createdAt"],
        updated_at=document["updatedAt"],
    )


def extensions_to_document(extensions: Mapping[str, ExtensionGrant]) -> Document:
    return {
        name: {"at": g.at, "by": g.by, "reason": g.reason, "source": g.source, "expiresAt": g.expires_at}
        for name, g in extensions.items()
    }


def extensions_from_document(document: Document) -> dict[str, ExtensionGrant]:
    return {name: _grant(name, grant) for name, grant in (document.get("extensions") or {}).items()}


def _grant(name: str, document: Document) -> ExtensionGrant:
    return ExtensionGrant(
        name=name,
        at=document["at"],
        by=document["by"],
        reason=document["reason"],
        source=document.get("source", "manual"),
        expires_at=document.get("expiresAt"),
    )

"""The destinations' collections: their definitions and everything their delivery keeps.

- ``destinations``: one document per destination (``_id`` the admin's key), its spec, state
  and signing secrets (kept as they are: each request is signed with them).
- ``destination_state``: per destination the feed place acknowledged (``cursor``), the lease
  (``owner``, ``expiresAt``: one deliverer across processes), the in-flight batch (``outbox``,
  written before its first send, so that whoever holds the lease next resends exactly it under
  the same id), the admin's queued requests (resync, resend, replay) and the failure streak.
  Every write of a deliverer is guarded on its lease: one that lost it changes nothing.
- ``destination_sent``: per destination and profile the hashed identifiers and segments sent,
  so a removal can name them after the profile is erased.
- ``destination_dead_letters``: batches whose retry schedule was spent, to replay.
- ``destination_deliveries``: the delivery log, a log of the layout (``storage.layout``) kept
  for ``PROFILEGATE_DESTINATIONS_LOG_RETENTION_DAYS``.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from profilegate.domain.changes import ChangeKind
from profilegate.domain.destinations import (
    Delivery,
    Destination,
    DestinationExists,
    DestinationSpec,
    DestinationState,
    Secrets,
    Selection,
    SentRecord,
)
from profilegate.storage.documents import Database, Document
from profilegate.storage.indexes import LOG_INDEXES, RETENTION_FIELDS
from profilegate.storage.layout import AppendLog, Layout, Retention

LOG = "destination_deliveries"
DEFAULT_DELIVERY_RETENTION_SECONDS = 30 * 86_400
PLACE_DIGITS = 15


@dataclass(frozen=True)
class ProfileEffect:
    """What a batch leaves recorded about one profile once acknowledged."""

    profile_id: str
    record: SentRecord | None
    forget: bool = False


@dataclass(frozen=True)
class Outbox:
    """The batch in flight. ``kind``: feed (``first``-``last`` are its feed places; its
    acknowledgement moves the cursor to ``last``), resend, resync or replay."""

    id: str
    kind: str
    body: str
    count: int
    first: int = 0
    last: int = 0
    attempts: int = 0
    first_attempt_at: datetime | None = None
    next_at: datetime | None = None
    last_error: str = ""
    effects: tuple[ProfileEffect, ...] = ()


@dataclass(frozen=True)
class Request:
    """An admin's request the deliverer works through: ``resync`` (from ``after``, a member
    page cursor), ``resend`` (the feed places after ``after`` dated ``since``-``until``),
    ``replay`` (the dead letter ``batch_id``)."""

    id: str
    kind: str
    after: str = ""
    since: datetime | None = None
    until: datetime | None = None
    batch_id: str = ""
    segment: str = ""


@dataclass(frozen=True)
class DeliveryState:
    cursor: int
    owner: str | None = None
    expires_at: datetime | None = None
    outbox: Outbox | None = None
    requests: tuple[Request, ...] = ()
    dead_in_row: int = 0
    failing_since: datetime | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    """One line of the delivery log: a request sent (``attempt``) and how it ended."""

    destination: str
    batch_id: str
    kind: str
    at: datetime
    status: str  # delivered, failed, dead_lettered, gone
    attempt: int
    latency_ms: int
    status_code: int | None
    count: int
    error: str = ""
    seq: int = 0

    @property
    def cursor(self) -> str:
        return str(self.seq)


@dataclass(frozen=True)
class DeadLetter:
    batch_id: str
    destination: str
    kind: str
    body: str
    count: int
    attempts: int
    error: str
    at: datetime
    effects: tuple[ProfileEffect, ...] = field(default=())


def delivery_log(layout: Layout, database: Database, retention_seconds: int) -> AppendLog:
    retention = Retention(RETENTION_FIELDS[LOG], retention_seconds)
    return layout.log(database, LOG, retention, indexes=LOG_INDEXES[LOG])


class DestinationRepository:
    def __init__(self, database: Database, log: AppendLog) -> None:
        self._destinations = database["destinations"]
        self._states = database["destination_state"]
        self._sent = database["destination_sent"]
        self._dead = database["destination_dead_letters"]
        self._log = log

    # Definitions

    async def insert(self, destination: Destination, cursor: int) -> None:
        """Store a new destination, its delivery starting after feed place ``cursor``."""
        try:
            await self._destinations.insert_one(_document(destination))
        except DuplicateKeyError as error:
            raise DestinationExists(destination.id) from error
        await self._states.update_one(
            {"_id": destination.id},
            {"$set": {"cursor": cursor, "requests": [], "deadInRow": 0, "outbox": None}},
            upsert=True,
        )

    async def get(self, destination_id: str) -> Destination | None:
        found = await self._destinations.find_one({"_id": destination_id})
        return None if found is None else _from_document(found)

    async def all(self) -> list[Destination]:
        return [_from_document(found) async for found in self._destinations.find({}).sort("_id")]

    async def enabled(self) -> list[Destination]:
        found = self._destinations.find({"state": DestinationState.ENABLED.value})
        return [_from_document(document) async for document in found]

    async def replace_spec(self, spec: DestinationSpec, now: datetime) -> Destination | None:
        updated = await self._destinations.find_one_and_update(
            {"_id": spec.id},
            {"$set": {**_spec_document(spec), "updatedAt": now}},
            return_document=ReturnDocument.AFTER,
        )
        return None if updated is None else _from_document(updated)

    async def set_state(
        self, destination_id: str, state: DestinationState, reason: str, now: datetime
    ) -> Destination | None:
        updated = await self._destinations.find_one_and_update(
            {"_id": destination_id},
            {"$set": {"state": state.value, "stateReason": reason, "updatedAt": now}},
            return_document=ReturnDocument.AFTER,
        )
        return None if updated is None else _from_document(updated)

    async def set_secrets(self, destination_id: str, secrets: Secrets, now: datetime) -> Destination | None:
        updated = await self._destinations.find_one_and_update(
            {"_id": destination_id},
            {"$set": {"secrets": _secrets_document(secrets), "updatedAt": now}},
            return_document=ReturnDocument.AFTER,
        )
        return None if updated is None else _from_document(updated)

    async def delete(self, destination_id: str) -> bool:
        deleted = await self._destinations.delete_one({"_id": destination_id})
        await self._states.delete_one({"_id": destination_id})
        await self._sent.delete_many({"destination": destination_id})
        await self._dead.delete_many({"destination": destination_id})
        return deleted.deleted_count == 1

    # Delivery state, guarded by the lease

    async def state(self, destination_id: str) -> DeliveryState | None:
        found = await self._states.find_one({"_id": destination_id})
        return None if found is None else _state(found)

    async def take_lease(
        self, destination_id: str, owner: str, now: datetime, until: datetime
    ) -> DeliveryState | None:
        """Hold the lease until ``until`` if it is free, expired or this owner's already; the
        state then, or None when another process holds it."""
        taken = await self._states.find_one_and_update(
            {
                "_id": destination_id,
                "$or": [{"owner": owner}, {"owner": None}, {"expiresAt": {"$lt": now}}],
            },
            {"$set": {"owner": owner, "expiresAt": until}},
            return_document=ReturnDocument.AFTER,
        )
        return None if taken is None else _state(taken)

    async def renew_lease(self, destination_id: str, owner: str, until: datetime) -> bool:
        renewed = await self._states.update_one(
            {"_id": destination_id, "owner": owner}, {"$set": {"expiresAt": until}}
        )
        return renewed.matched_count == 1

    async def release_lease(self, destination_id: str, owner: str) -> None:
        await self._states.update_one(
            {"_id": destination_id, "owner": owner}, {"$set": {"owner": None, "expiresAt": None}}
        )

    async def write_outbox(
        self, destination_id: str, owner: str, outbox: Outbox, *, request_after: str | None = None
    ) -> bool:
        """Put the batch in flight (before its first send); ``request_after``: the first queued
        request's progress, written with it."""
        changes: Document = {"outbox": _outbox_document(outbox)}
        if request_after is not None:
            changes["requests.0.after"] = request_after
        written = await self._states.update_one({"_id": destination_id, "owner": owner}, {"$set": changes})
        return written.matched_count == 1

    async def record_attempt(
        self, destination_id: str, owner: str, outbox: Outbox, failing_since: datetime
    ) -> bool:
        written = await self._states.update_one(
            {"_id": destination_id, "owner": owner},
            {
                "$set": {
                    "outbox.attempts": outbox.attempts,
                    "outbox.firstAttemptAt": outbox.first_attempt_at,
                    "outbox.nextAt": outbox.next_at,
                    "outbox.lastError": outbox.last_error,
                    "failingSince": failing_since,
                }
            },
        )
        return written.matched_count == 1

    async def settle(
        self, destination_id: str, owner: str, outbox: Outbox, *, delivered: bool
    ) -> DeliveryState | None:
        """The batch in flight is done (``delivered``, or given up): clear it, move the cursor
        past a feed batch, count the streak of given-up batches; the state then, or None when
        the lease was lost."""
        changes: Document = {"outbox": None}
        if outbox.kind == "feed":
            changes["cursor"] = outbox.last
        if delivered:
            changes |= {"deadInRow": 0, "failingSince": None}
        update: Document = {"$set": changes}
        if not delivered:
            update["$inc"] = {"deadInRow": 1}
        settled = await self._states.find_one_and_update(
            {"_id": destination_id, "owner": owner, "outbox.id": outbox.id},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if settled is None else _state(settled)

    async def skip_to(self, destination_id: str, owner: str, cursor: int) -> bool:
        """Move the cursor past changes that sent nothing."""
        moved = await self._states.update_one(
            {"_id": destination_id, "owner": owner, "outbox": None}, {"$set": {"cursor": cursor}}
        )
        return moved.matched_count == 1

    async def clear_failures(self, destination_id: str) -> None:
        """Forget the failure streak; a batch in flight waiting for its next attempt is due now."""
        await self._states.update_one(
            {"_id": destination_id}, {"$set": {"deadInRow": 0, "failingSince": None}}
        )
        await self._states.update_one(
            {"_id": destination_id, "outbox": {"$ne": None}}, {"$set": {"outbox.nextAt": None}}
        )

    async def queue_request(self, destination_id: str, request: Request) -> bool:
        queued = await self._states.update_one(
            {"_id": destination_id}, {"$push": {"requests": _request_document(request)}}
        )
        return queued.matched_count == 1

    async def queue_progress(self, destination_id: str, owner: str, after: str) -> None:
        """Where the first queued request has got to, when it sent nothing from a page."""
        await self._states.update_one(
            {"_id": destination_id, "owner": owner}, {"$set": {"requests.0.after": after}}
        )

    async def finish_request(self, destination_id: str, owner: str, request_id: str) -> None:
        await self._states.update_one(
            {"_id": destination_id, "owner": owner}, {"$pull": {"requests": {"id": request_id}}}
        )

    # What each profile was sent

    async def sent(self, destination_id: str, profile_ids: list[str]) -> dict[str, SentRecord]:
        ids = [_sent_id(destination_id, profile_id) for profile_id in profile_ids]
        found = self._sent.find({"_id": {"$in": ids}})
        return {document["profileId"]: _sent_record(document) async for document in found}

    async def keep_sent(self, destination_id: str, effects: tuple[ProfileEffect, ...]) -> None:
        if not effects:
            return
        writes: list[Any] = []
        for effect in effects:
            key = {"_id": _sent_id(destination_id, effect.profile_id)}
            if effect.forget:
                writes.append(UpdateOne(key, {"$set": {"removed": True, "segments": []}}))
            elif effect.record is not None:
                record = {
                    "destination": destination_id,
                    "profileId": effect.profile_id,
                    "hashes": {kind: list(values) for kind, values in effect.record.hashes.items()},
                    "segments": list(effect.record.segments),
                    "removed": False,
                }
                writes.append(UpdateOne(key, {"$set": record}, upsert=True))
        if writes:
            await self._sent.bulk_write(writes, ordered=True)

    # Dead letters

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        await self._dead.replace_one({"_id": letter.batch_id}, _dead_document(letter), upsert=True)

    async def dead_letter(self, batch_id: str) -> DeadLetter | None:
        found = await self._dead.find_one({"_id": batch_id})
        return None if found is None else _dead_letter(found)

    async def dead_letters(
        self, destination_id: str, first: int, before: datetime | None = None
    ) -> list[DeadLetter]:
        query: Document = {"destination": destination_id}
        if before is not None:
            query["at"] = {"$lt": before}
        found = self._dead.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(first)
        return [_dead_letter(document) async for document in found]

    async def remove_dead_letter(self, batch_id: str) -> None:
        await self._dead.delete_one({"_id": batch_id})

    async def count_dead_letters(self, destination_id: str) -> int:
        return await self._dead.count_documents({"destination": destination_id})

    # The delivery log

    async def log(self, record: DeliveryRecord) -> None:
        seq = await self._log.reserve(1)
        for collection, _ in await self._log.placed([seq], [record]):
            await collection.insert_one({"_id": _place(seq), **_record_document(record)})

    async def deliveries(
        self, destination_id: str, first: int, before: int | None = None
    ) -> list[DeliveryRecord]:
        """Up to ``first`` log lines of the destination, newest first, placed before ``before``."""
        head = await self._log.head()
        last = head if before is None else min(head, before - 1)
        found: list[DeliveryRecord] = []
        if last < 1:
            return found
        query = {"destination": destination_id, "_id": {"$lte": _place(last)}}
        for collection in self._log.down_from(last):
            cursor = collection.find(query).sort("_id", DESCENDING).limit(first - len(found))
            found += [_record(document) async for document in cursor]
            if len(found) >= first:
                break
        return found

    async def hold_retention(self) -> None:
        await self._log.hold_retention()


def _place(seq: int) -> str:
    return f"{seq:0{PLACE_DIGITS}d}"


def _sent_id(destination_id: str, profile_id: str) -> str:
    return f"{destination_id}:{profile_id}"


def _sent_record(document: Document) -> SentRecord:
    if document.get("removed"):
        return SentRecord()
    hashes = {kind: tuple(values) for kind, values in document.get("hashes", {}).items()}
    return SentRecord(hashes, tuple(document.get("segments", ())))


def _spec_document(spec: DestinationSpec) -> Document:
    return {
        "name": spec.name,
        "url": spec.url,
        "send": {
            "kinds": sorted(kind.value for kind in spec.selection.kinds),
            "segments": list(spec.selection.segments),
            "tiers": spec.selection.tiers,
            "extensions": list(spec.selection.extensions),
        },
        "consentPurpose": spec.consent_purpose,
        "fields": list(spec.fields),
        "hashIdentifiers": spec.hash_identifiers,
        "maxBatch": spec.delivery.max_batch,
        "maxWaitSeconds": spec.delivery.max_wait_seconds,
        "ratePerSecond": spec.delivery.rate_per_second,
    }


def _secrets_document(secrets: Secrets) -> Document:
    return {"current": secrets.current, "previous": secrets.previous, "previousUntil": secrets.previous_until}


def _document(destination: Destination) -> Document:
    return {
        "_id": destination.id,
        **_spec_document(destination.spec),
        "secrets": _secrets_document(destination.secrets),
        "state": destination.state.value,
        "stateReason": destination.state_reason,
        "createdAt": destination.created_at,
        "updatedAt": destination.updated_at,
    }


def _from_document(document: Document) -> Destination:
    send = document["send"]
    secrets = document["secrets"]
    spec = DestinationSpec(
        id=document["_id"],
        name=document["name"],
        url=document["url"],
        selection=Selection(
            kinds=frozenset(ChangeKind(kind) for kind in send.get("kinds", ())),
            segments=tuple(send.get("segments", ())),
            tiers=bool(send.get("tiers")),
            extensions=tuple(send.get("extensions", ())),
        ),
        consent_purpose=document["consentPurpose"],
        fields=tuple(document.get("fields", ())),
        hash_identifiers=bool(document.get("hashIdentifiers")),
        delivery=Delivery(
            max_batch=int(document["maxBatch"]),
            max_wait_seconds=float(document["maxWaitSeconds"]),
            rate_per_second=float(document["ratePerSecond"]),
        ),
    )
    return Destination(
        spec=spec,
        secrets=Secrets(secrets["current"], secrets.get("previous"), secrets.get("previousUntil")),
        state=DestinationState(document["state"]),
        state_reason=document.get("stateReason", ""),
        created_at=document["createdAt"],
        updated_at=document["updatedAt"],
    )


def _effects_document(effects: tuple[ProfileEffect, ...]) -> list[Document]:
    return [
        {
            "profileId": effect.profile_id,
            "forget": effect.forget,
            "record": None
            if effect.record is None
            else {
                "hashes": {kind: list(values) for kind, values in effect.record.hashes.items()},
                "segments": list(effect.record.segments),
            },
        }
        for effect in effects
    ]


def _effects(documents: list[Document]) -> tuple[ProfileEffect, ...]:
    effects = []
    for document in documents:
        record = document.get("record")
        effects.append(
            ProfileEffect(
                profile_id=document["profileId"],
                forget=bool(document.get("forget")),
                record=None
                if record is None
                else SentRecord(
                    {kind: tuple(values) for kind, values in record["hashes"].items()},
                    tuple(record["segments"]),
                ),
            )
        )
    return tuple(effects)


def _outbox_document(outbox: Outbox) -> Document:
    return {
        "id": outbox.id,
        "kind": outbox.kind,
        "body": outbox.body,
        "count": outbox.count,
        "first": outbox.first,
        "last": outbox.last,
        "attempts": outbox.attempts,
        "firstAttemptAt": outbox.first_attempt_at,
        "nextAt": outbox.next_at,
        "lastError": outbox.last_error,
        "effects": _effects_document(outbox.effects),
    }


def _outbox(document: Document) -> Outbox:
    return Outbox(
        id=document["id"],
        kind=document["kind"],
        body=document["body"],
        count=int(document["count"]),
        first=int(document.get("first", 0)),
        last=int(document.get("last", 0)),
        attempts=int(document.get("attempts", 0)),
        first_attempt_at=document.get("firstAttemptAt"),
        next_at=document.get("nextAt"),
        last_error=document.get("lastError", ""),
        effects=_effects(document.get("effects", [])),
    )


def _request_document(request: Request) -> Document:
    return {
        "id": request.id,
        "kind": request.kind,
        "after": request.after,
        "since": request.since,
        "until": request.until,
        "batchId": request.batch_id,
        "segment": request.segment,
    }


def _request(document: Document) -> Request:
    return Request(
        id=document["id"],
        kind=document["kind"],
        after=document.get("after", ""),
        since=document.get("since"),
        until=document.get("until"),
        batch_id=document.get("batchId", ""),
        segment=document.get("segment", ""),
    )


def _state(document: Document) -> DeliveryState:
    outbox = document.get("outbox")
    return DeliveryState(
        cursor=int(document.get("cursor", 0)),
        owner=document.get("owner"),
        expires_at=document.get("expiresAt"),
        outbox=None if outbox is None else _outbox(outbox),
        requests=tuple(_request(request) for request in document.get("requests", [])),
        dead_in_row=int(document.get("deadInRow", 0)),
        failing_since=document.get("failingSince"),
    )


def _record_document(record: DeliveryRecord) -> Document:
    return {
        "destination": record.destination,
        "batchId": record.batch_id,
        "kind": record.kind,
        "at": record.at,
        "status": record.status,
        "attempt": record.attempt,
        "latencyMs": record.latency_ms,
        "statusCode": record.status_code,
        "count": record.count,
        "error": record.error,
    }


def _record(document: Document) -> DeliveryRecord:
    return DeliveryRecord(
        destination=document["destination"],
        batch_id=document["batchId"],
        kind=document["kind"],
        at=document["at"],
        status=document["status"],
        attempt=int(document["attempt"]),
        latency_ms=int(document["latencyMs"]),
        status_code=document.get("statusCode"),
        count=int(document["count"]),
        error=document.get("error", ""),
        seq=int(document["_id"]),
    )


def _dead_document(letter: DeadLetter) -> Document:
    return {
        "destination": letter.destination,
        "kind": letter.kind,
        "body": letter.body,
        "count": letter.count,
        "attempts": letter.attempts,
        "error": letter.error,
        "at": letter.at,
        "effects": _effects_document(letter.effects),
    }


def _dead_letter(document: Document) -> DeadLetter:
    return DeadLetter(
        batch_id=document["_id"],
        destination=document["destination"],
        kind=document["kind"],
        body=document["body"],
        count=int(document["count"]),
        attempts=int(document["attempts"]),
        error=document.get("error", ""),
        at=document["at"],
        effects=_effects(document.get("effects", [])),
    )

"""Places handed out by a counter document in ``meta``: the order of the append-only logs
(the event log, the change feed, the audit log). One ``$inc`` hands out a block, so the
places of one write are contiguous.

The event log's counter also records, per place, which key (event id) was claimed for which
owner (profile), so a key used again is recognised whatever segment its first use is in
(``reserve_claimed``): one command, the same one that hands out the places."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from bson import Binary
from pymongo import ReturnDocument

from profilegate.storage.documents import Collection


async def reserve(meta: Collection, counter: str, count: int) -> int:
    """Hand out ``count`` more places of ``counter``; the count handed out so far, these included."""
    found = await meta.find_one_and_update(
        {"_id": counter}, {"$inc": {"next": count}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert found is not None, "an upsert returns the document"
    return int(found["next"])


async def handed_out(meta: Collection, counter: str) -> int:
    """How many places of ``counter`` were handed out (0 before the first)."""
    found = await meta.find_one({"_id": counter}, {"next": 1})
    return 0 if found is None else int(found["next"])


# A claim is packed as the key's digest and its owner's, so the counter document grows by
# CLAIM_BYTES per place: one binary element per reservation (the embedded store decodes a
# document at a cost per element, DESIGN sec. 2).
KEY_DIGEST_BYTES = 8
OWNER_DIGEST_BYTES = 4
CLAIM_BYTES = KEY_DIGEST_BYTES + OWNER_DIGEST_BYTES
CLAIMS_FIELD = "claims"


@dataclass(frozen=True)
class EarlierClaim:
    """Where a key was claimed first: its place, and a digest of the owner it was claimed for."""

    place: int
    owner: bytes


async def reserve_claimed(
    meta: Collection, counter: str, claims: Sequence[tuple[str, str]]
) -> tuple[int, dict[str, EarlierClaim]]:
    """``reserve`` one place for each ``(key, owner)``, recording the claims in the same atomic
    update; the first place handed out, and for each key claimed at an earlier place, the first
    such claim. Two reservations racing with one key are ordered by the update: the later sees
    the earlier."""
    packed = Binary(b"".join(_digest(key, KEY_DIGEST_BYTES) + owner_digest(owner) for key, owner in claims))
    found = await meta.find_one_and_update(
        {"_id": counter},
        {"$inc": {"next": len(claims)}, "$push": {CLAIMS_FIELD: packed}},
        upsert=True,
        return_document=ReturnDocument.BEFORE,
    )
    if found is None:
        return 0, {}
    first = int(found["next"])
    return first, _earlier(found.get(CLAIMS_FIELD, []), first, [key for key, _ in claims])


def owner_digest(owner: str) -> bytes:
    return _digest(owner, OWNER_DIGEST_BYTES)


def _earlier(chunks: list[bytes], head: int, keys: list[str]) -> dict[str, EarlierClaim]:
    """The first claim of each of ``keys`` among ``chunks``, which hold the claims of the places
    up to ``head`` (those before the first chunk were handed out before claims were recorded)."""
    wanted = {_digest(key, KEY_DIGEST_BYTES): key for key in keys}
    place = head - sum(len(chunk) for chunk in chunks) // CLAIM_BYTES
    found: dict[str, EarlierClaim] = {}
    for chunk in chunks:
        for start in range(0, len(chunk), CLAIM_BYTES):
            key = wanted.get(chunk[start : start + KEY_DIGEST_BYTES])
            if key is not None and key not in found:
                found[key] = EarlierClaim(place, chunk[start + KEY_DIGEST_BYTES : start + CLAIM_BYTES])
            place += 1
    return found


def _digest(value: str, size: int) -> bytes:
    return hashlib.blake2b(value.encode(), digest_size=size).digest()

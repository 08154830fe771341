"""The ``api_keys`` collection: ``_id`` is the key's public id; only the secret's hash is kept."""

from datetime import datetime

from profilegate.domain.changes import ChangeKind
from profilegate.domain.keys import ApiKey, Role
from profilegate.storage.documents import Collection, Document


class ApiKeyRepository:
    def __init__(self, collection: Collection) -> None:
        self._keys = collection

    async def insert(self, key: ApiKey) -> None:
        await self._keys.insert_one(
            {
                "_id": key.id,
                "name": key.name,
                "role": key.role.value,
                "secretHash": key.secret_hash,
                "createdAt": key.created_at,
                "revokedAt": key.revoked_at,
                "changeKinds": None if key.change_kinds is None else [k.value for k in key.change_kinds],
                "fields": list(key.fields),
                "allowedOrigins": list(key.allowed_origins),
                "persistedOnly": key.persisted_only,
                "proofSecret": key.proof_secret,
                "proofPublicKey": key.proof_public_key,
            }
        )

    async def get(self, key_id: str) -> ApiKey | None:
        found = await self._keys.find_one({"_id": key_id})
        return None if found is None else _from_document(found)

    async def all(self) -> list[ApiKey]:
        cursor = self._keys.find({}).sort([("name", 1), ("_id", 1)])
        return [_from_document(document) async for document in cursor]

    async def allowed_origins(self) -> frozenset[str]:
        """Every origin some live key allows (what a CORS preflight, which carries no key, is told)."""
        cursor = self._keys.find({"revokedAt": None}, {"allowedOrigins": 1})
        origins = {origin async for document in cursor for origin in document.get("allowedOrigins") or ()}
        return frozenset(origins)

    async def revoke(self, id_or_name: str, now: datetime) -> list[ApiKey]:
        """Revoke the key with this id, or every live key with this name; return those revoked."""
        live = {"revokedAt": None}
        matches = [
            _from_document(document)
            async for document in self._keys.find(
                {"$or": [{"_id": id_or_name}, {"name": id_or_name}], **live}
            )
        ]
        for key in matches:
            await self._keys.update_one({"_id": key.id, **live}, {"$set": {"revokedAt": now}})
        return [key.model_copy(update={"revoked_at": now}) for key in matches]


def _from_document(document: Document) -> ApiKey:
    kinds = document.get("changeKinds")
    return ApiKey(
        id=document["_id"],
        name=document["name"],
        role=Role(document["role"]),
        secret_hash=document["secretHash"],
        created_at=document["createdAt"],
        revoked_at=document.get("revokedAt"),
        change_kinds=None if kinds is None else tuple(ChangeKind(kind) for kind in kinds),
        fields=tuple(document.get("fields", ())),
        allowed_origins=tuple(document.get("allowedOrigins") or ()),
        persisted_only=bool(document.get("persistedOnly", False)),
        proof_secret=document.get("proofSecret"),
        proof_public_key=document.get("proofPublicKey"),
    )

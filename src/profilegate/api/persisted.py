"""Persisted operations: the documents admins allow, run by their SHA-256 hash.

A client sends ``{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}},
"variables": {...}}`` (the shape Apollo Client's persisted-queries link sends) instead of the
query. Only registered documents run that way; nothing registers itself. The same text each
time also means the parser and validation caches answer for it.
"""

import hashlib
from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError, parse, validate

from profilegate.api.context import Info
from profilegate.api.errors import InvalidInputError
from profilegate.api.permissions import ADMIN
from profilegate.storage.persisted_operations import PersistedOperationRepository

MAX_DOCUMENT_LENGTH = 20_000
MAX_CACHED = 1_000


@strawberry.type(name="PersistedOperation")
class PersistedOperationType:
    id: str = strawberry.field(description="The document's SHA-256, lower-case hex: send it as sha256Hash.")
    document: str
    registered_by: str
    registered_at: datetime


@strawberry.type
class PersistedOperationRegistered:
    operation: PersistedOperationType
    created: bool = strawberry.field(description="False when the same document was registered already.")


RegisterResult = Annotated[
    PersistedOperationRegistered | InvalidInputError, strawberry.union("RegisterPersistedOperationResult")
]


def operation_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class PersistedDocuments:
    """Registered documents by hash, cached per process (a deleted one runs on here until restart)."""

    def __init__(self) -> None:
        self._documents: dict[str, str] = {}

    async def get(self, operations: PersistedOperationRepository, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is None:
            document = await operations.get(sha256)
            if document is not None and len(self._documents) < MAX_CACHED:
                self._documents[sha256] = document
        return document


@strawberry.type
class PersistedQueries:
    @strawberry.field(permission_classes=[ADMIN], description="Every registered persisted operation.")
    async def persisted_operations(self, info: Info) -> list[PersistedOperationType]:
        return [
            PersistedOperationType(id=sha, document=text, registered_by=by, registered_at=at)
            for sha, text, by, at in await info.context.repos.persisted_operations.all()
        ]


@strawberry.type
class PersistedMutations:
    @strawberry.mutation(
        permission_classes=[ADMIN],
        description="Allow an operation document to run by its SHA-256 (it must validate).",
    )
    async def register_persisted_operation(self, info: Info, document: str) -> RegisterResult:
        problem = _problem(info, document)
        if problem is not None:
            return InvalidInputError(field="document", message=problem)
        context, sha = info.context, operation_hash(document)
        operations = context.repos.persisted_operations
        created = await operations.save(sha, document, by=context.principal.name, now=context.now)
        stored = next(item for item in await operations.all() if item[0] == sha)
        operation = PersistedOperationType(
            id=sha, document=stored[1], registered_by=stored[2], registered_at=stored[3]
        )
        return PersistedOperationRegistered(operation=operation, created=created)

    @strawberry.mutation(permission_classes=[ADMIN], description="Stop allowing a persisted operation.")
    async def delete_persisted_operation(self, info: Info, id: str) -> bool:
        return await info.context.repos.persisted_operations.delete(id)


def _problem(info: Info, document: str) -> str | None:
    if len(document) > MAX_DOCUMENT_LENGTH:
        return f"is longer than {MAX_DOCUMENT_LENGTH} characters"
    try:
        errors = validate(info.schema._schema, parse(document))
    except GraphQLError as error:
        return error.message
    return "; ".join(error.message for error in errors) or None

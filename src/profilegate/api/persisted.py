"""Persisted operations: the documents admins allow, run by their SHA-256 hash.

A client sends ``{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}},
"variables": {...}}`` (the shape Apollo Client's persisted-queries link sends), or
``{"documentId": "sha256:<hex>"}`` (the GraphQL-over-HTTP persisted documents proposal; the
prefix is optional), instead of the query. Only registered documents run that way; nothing
registers itself. A request that sends a query with a hash nobody registered runs that query
as an ad-hoc one. A persisted operation's parsed document and its validation result are kept
per process by hash, apart from the LRU caches that ad-hoc queries could evict them from.
"""

import hashlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry
from graphql import DocumentNode, GraphQLError, parse, validate
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.http import GraphQLRequestData
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from profilegate.api.context import Info
from profilegate.api.errors import InvalidInputError, error_result
from profilegate.api.limits import CACHED_DOCUMENT_CHARS, PERSISTED, PERSISTED_MISSING, PLACEHOLDER, REFUSED
from profilegate.api.permissions import ADMIN
from profilegate.domain.errors import InvalidInput
from profilegate.storage.persisted_operations import PersistedOperationRepository

MAX_DOCUMENT_LENGTH = 20_000
MAX_CACHED = 1_000
CACHED_FOR = timedelta(seconds=60)
_PARSED: dict[str, DocumentNode] = {}  # persisted documents' text -> their parsed document
# (document text, schema, rules) -> validation errors, of persisted and of ad-hoc documents
_VALIDATED: dict[tuple[object, ...], list[GraphQLError]] = {}
_ADHOC_VALIDATED: dict[tuple[object, ...], list[GraphQLError]] = {}


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
    """Registered documents by hash, cached per process for ``CACHED_FOR`` (so a deleted one stops
    running everywhere within that time; a newly registered one runs at once)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._documents: dict[str, tuple[str, datetime]] = {}

    async def get(self, operations: PersistedOperationRepository, sha256: str) -> str | None:
        now = self._clock()
        cached = self._documents.get(sha256)
        if cached is not None and now - cached[1] < CACHED_FOR:
            return cached[0]
        self._documents.pop(sha256, None)
        document = await operations.get(sha256)
        if document is not None and len(self._documents) < MAX_CACHED:
            self._documents[sha256] = (document, now)
        return document

    async def substitute(
        self,
        operations: PersistedOperationRepository,
        data: GraphQLRequestData,
        document_id: object,
        scope: MutableMapping[str, Any],
    ) -> None:
        """Put the registered document in place of the query when the request names one by hash;
        mark the scope for the checks in ``api.limits`` (found, or named but not registered)."""
        sha256 = requested_hash(data.extensions, document_id)
        if sha256 is None:
            return
        document = await self.get(operations, sha256)
        if document is not None:
            scope[PERSISTED] = sha256
            data.query = document
        elif data.query is None:
            scope[PERSISTED_MISSING] = sha256[:80]
            data.query = PLACEHOLDER


def requested_hash(extensions: Mapping[str, Any] | None, document_id: object) -> str | None:
    """The hash in Apollo's ``extensions.persistedQuery.sha256Hash``, or in ``documentId``."""
    persisted = (extensions or {}).get("persistedQuery")
    sha256 = persisted.get("sha256Hash") if isinstance(persisted, dict) else document_id
    return sha256.lower().removeprefix("sha256:") if isinstance(sha256, str) else None


class PersistedParserCache(ParserCache):
    """The parser cache, keeping persisted operations' documents apart: always answered."""

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if not _runs_persisted(execution):
            yield from super().on_parse()
            return
        text = execution.query or ""
        document = _PARSED.get(text)
        if document is None:
            document = self.cached_parse_document(text, **execution.parse_options)
            if len(_PARSED) < MAX_CACHED:
                _PARSED[text] = document
        execution.graphql_document = document
        yield


class PersistedValidationCache(ValidationCache):
    """The validation cache, keyed by the document's text (hashing a parsed document walks all
    of it, on every request): persisted operations' results kept apart and always answered,
    ad-hoc ones in an LRU of ``maxsize``, texts over ``CACHED_DOCUMENT_CHARS`` never kept."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.maxsize = maxsize

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        document, text = execution.graphql_document, execution.query or ""
        if document is None or (len(text) > CACHED_DOCUMENT_CHARS and not _runs_persisted(execution)):
            yield from super().on_validate()
            return
        persisted = _runs_persisted(execution)
        kept = _VALIDATED if persisted else _ADHOC_VALIDATED
        key = (text, execution.schema._schema, execution.validation_rules)
        errors = kept.get(key)
        if errors is None:
            errors = list(validate_document(execution.schema._schema, document, execution.validation_rules))
            if persisted and len(kept) < MAX_CACHED:
                kept[key] = errors
            elif not persisted:
                kept[key] = errors
                while len(kept) > self.maxsize:
                    del kept[next(iter(kept))]
        elif not persisted:
            kept[key] = kept.pop(key)  # the most recently used last
        execution.pre_execution_errors = list(errors)
        yield


def _runs_persisted(execution: ExecutionContext) -> bool:
    scope: Mapping[str, Any] = getattr(execution.context, "scope", {})
    return PERSISTED in scope and getattr(execution, REFUSED, None) is None


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
            return error_result(InvalidInput("document", problem))  # type: ignore[return-value]  # one of the union's members
        context, sha = info.context, operation_hash(document)
        operations = context.repos.persisted_operations
        created = await operations.save(sha, document, by=context.principal.name, now=context.now)
        stored = await operations.record(sha)
        assert stored is not None, "the operation was just saved"
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
        where = (
            f" at line {error.locations[0].line}, column {error.locations[0].column}"
            if error.locations
            else ""
        )
        return f"does not parse as a GraphQL document{where}: {error.message}"
    found = "; ".join(error.message for error in errors)
    return f"does not validate against the schema: {found}" if found else None

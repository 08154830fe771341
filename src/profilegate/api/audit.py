"""The audit log: an entry for every mutation an admin or partner key calls, and ``auditLog``.

``AuditedField`` is a field extension that ``audit_root_fields`` puts on every root field of
the mutation type (and on the root queries in ``AUDITED_QUERIES``, which read a person's data
whole, or every profile's figures by id): it wraps the field's permission checks and
resolver, lets them run, and records who called it, what with (arguments as sent, without
secrets and personal values, see ``domain.audit``), which profile it touched and how it ended
(the result's type, or the error's code). Each root field of an operation gets its own entry.
Writing the entry happens after the mutation did its work: if the store fails then, the
failure is logged and the caller still gets the answer. Being on those fields only, it costs
nothing to any other field: a schema-wide ``resolve`` hook would sit in front of every field of
every query (a checkout's 20-odd fields).
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.extensions import FieldExtension
from strawberry.scalars import JSON
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

from profilegate.api import enums  # noqa: F401  (registers the domain enums with the schema first)
from profilegate.api.context import Context, Info
from profilegate.api.errors import bad_input
from profilegate.api.permissions import ADMIN
from profilegate.domain.audit import (
    DEFAULT_PAGE,
    Actor,
    AuditEntry,
    AuditFilter,
    NewAuditEntry,
    check_page_size,
    decode_audit_cursor,
    redact_arguments,
)
from profilegate.domain.errors import InvalidInput
from profilegate.domain.identities import IdentityType, normalise_identity
from profilegate.domain.keys import Role
from profilegate.domain.refs import ProfileRef
from profilegate.service.resolve import find_profile

log = logging.getLogger("profilegate.audit")

AUDITED_ROLES = frozenset({Role.ADMIN, Role.PARTNER})
AUDITED_QUERIES = frozenset({"exportProfile", "aggregateCheck"})


class AuditedField(FieldExtension):
    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: strawberry.Info[Context], **kwargs: Any
    ) -> Any:
        caller = info.context.caller
        if caller is None or caller.role not in AUDITED_ROLES:
            return await next_(source, info, **kwargs)
        return await _recorded(
            lambda: next_(source, info, **kwargs), info.context, info.field_name, _sent(info)
        )


def _sent(info: strawberry.Info[Context]) -> dict[str, Any]:
    """The field's arguments as sent (GraphQL names, plain values), as graphql-core coerces them
    before Strawberry converts them to input types; the resolver's own are the converted ones."""
    raw = info._raw_info
    variables: Any = raw.variable_values  # Strawberry hands resolvers the plain coerced values
    if not isinstance(variables, VariableValues):
        variables = VariableValues({}, variables)
    return get_argument_values(raw.parent_type.fields[raw.field_name], raw.field_nodes[0], variables)


def audit_root_fields(mutation: type, query: type) -> None:
    """Puts ``AuditedField`` on every field of ``mutation`` and on the fields of ``query`` named in
    ``AUDITED_QUERIES``, once (the types are built once per process; schemas many times)."""
    names = NameConverter()
    queries = get_object_definition(query, strict=True).fields
    fields = [
        *get_object_definition(mutation, strict=True).fields,
        *(field for field in queries if names.from_field(field) in AUDITED_QUERIES),
    ]
    for field in fields:
        if not any(isinstance(extension, AuditedField) for extension in field.extensions):
            field.extensions.append(AuditedField())


async def _recorded(
    resolve: Callable[[], Any], context: Context, action: str, arguments: dict[str, Any]
) -> Any:
    try:
        result = await _awaited(resolve())
    except Exception as error:
        await _record(context, action, arguments, None, _error_code(error))
        raise
    await _record(context, action, arguments, result, _type_name(result))
    return result


async def _awaited(value: Any) -> Any:
    return await value if isinstance(value, Awaitable) else value


async def _record(
    context: Context, action: str, arguments: dict[str, Any], result: Any, outcome: str
) -> None:
    caller = context.principal
    try:
        entry = NewAuditEntry(
            at=context.now,
            actor=Actor(name=caller.name, key_id=caller.key_id, role=caller.role),
            action=action,
            arguments=redact_arguments(arguments),
            profile_id=_result_profile_id(result) or await _argument_profile_id(context, arguments),
            outcome=outcome,
        )
        await context.repos.audit.append(entry)
    except Exception:
        log.exception("writing the audit entry for %s by %s failed", action, caller.name)


def _type_name(result: Any) -> str:
    definition = getattr(type(result), "__strawberry_definition__", None)
    return str(definition.name) if definition is not None else type(result).__name__


def _error_code(error: Exception) -> str:
    if isinstance(error, GraphQLError):
        return str((error.extensions or {}).get("code", "GRAPHQL_ERROR"))
    return "INTERNAL_SERVER_ERROR"


def _result_profile_id(result: Any) -> str | None:
    """The profile a result names: ``profile.id`` or ``profileId``."""
    profile = getattr(result, "profile", None)
    found = getattr(profile, "id", None) or getattr(result, "profile_id", None)
    return None if found is None else str(found)


async def _argument_profile_id(context: Context, arguments: dict[str, Any]) -> str | None:
    """The profile a ``profileId`` or ``ref`` (or ``input.ref``) argument names, resolved: an id as
    given, an identity through its key (one read by ``_id``)."""
    if isinstance(arguments.get("profileId"), str):
        return str(arguments["profileId"])
    ref = arguments.get("ref")
    if ref is None and isinstance(arguments.get("input"), dict):
        ref = arguments["input"].get("ref")
    if not isinstance(ref, dict):
        return None
    if ref.get("id") is not None:
        return str(ref["id"])
    identity = ref.get("identity")
    if not isinstance(identity, dict):
        return None
    try:
        kind = IdentityType[str(getattr(identity.get("type"), "name", identity.get("type")))]
        normalised = normalise_identity(kind, str(identity.get("value")), phone_region=context.phone_region)
    except (InvalidInput, KeyError):
        return None
    found = await find_profile(context.repos, ProfileRef(identity=normalised))
    return None if found is None else found.id


@strawberry.input(description="Entries matching every given field.")
class AuditFilterInput:
    actor: str | None = strawberry.field(default=None, description="A key's name or id.")
    action: str | None = strawberry.field(default=None, description="A root field, e.g. `eraseProfile`.")
    profile_id: strawberry.ID | None = None
    from_: datetime | None = strawberry.field(default=None, name="from", description="At or after.")
    to: datetime | None = strawberry.field(default=None, description="Before.")
    outcome: str | None = strawberry.field(
        default=None, description="A result type (`ProfileErased`) or an error code (`FORBIDDEN`)."
    )

    def to_domain(self) -> AuditFilter:
        return AuditFilter(
            actor=self.actor,
            action=self.action,
            profile_id=None if self.profile_id is None else str(self.profile_id),
            since=self.from_,
            until=self.to,
            outcome=self.outcome,
        )


@strawberry.type(name="AuditActor")
class AuditActorType:
    name: str
    key_id: str | None
    role: Role


@strawberry.type(name="AuditEntry")
class AuditEntryType:
    cursor: str
    at: datetime
    actor: AuditActorType
    action: str
    arguments: JSON = strawberry.field(description="As called, without secrets and personal values.")
    profile_id: strawberry.ID | None
    outcome: str

    @classmethod
    def from_domain(cls, entry: AuditEntry) -> "AuditEntryType":
        return cls(
            cursor=entry.cursor,
            at=entry.at,
            actor=AuditActorType(name=entry.actor.name, key_id=entry.actor.key_id, role=entry.actor.role),
            action=entry.action,
            arguments=JSON(entry.arguments),
            profile_id=None if entry.profile_id is None else strawberry.ID(entry.profile_id),
            outcome=entry.outcome,
        )


@strawberry.type
class AuditPage:
    entries: list[AuditEntryType]
    next_cursor: str | None = strawberry.field(
        description="Pass as `after` for the next page; null at the end."
    )


@strawberry.type
class AuditQueries:
    @strawberry.field(
        permission_classes=[ADMIN],
        description="Admin and partner mutations, newest first (`first` at most 200).",
    )
    async def audit_log(
        self,
        info: Info,
        filter: AuditFilterInput | None = None,
        first: int = DEFAULT_PAGE,
        after: Annotated[str | None, strawberry.argument(description="A `nextCursor`.")] = None,
    ) -> AuditPage:
        try:
            size = check_page_size(first)
            before = None if after is None else decode_audit_cursor(after)
        except InvalidInput as error:
            raise bad_input(error) from error
        wanted = AuditFilter() if filter is None else filter.to_domain()
        found = await info.context.repos.audit.page(wanted, size + 1, before)
        page = found[:size]
        more = len(found) > size
        return AuditPage(
            entries=[AuditEntryType.from_domain(entry) for entry in page],
            next_cursor=page[-1].cursor if more else None,
        )

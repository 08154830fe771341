"""docs/access.md's table, read from the code: every root field, HTTP endpoint and ``Profile``
field against every role, and a storefront key without and with a shopper proof.

The roles come from the permission classes of the fields (``api.permissions``) and from the
guards of the routes (``app.create_app``); what a storefront key may do where its role is
admitted is declared below, in ``STOREFRONT``, and must be declared for every such row.
``profilegate export-access-table`` writes the table; tests/api/test_access_table.py drives
every cell through the HTTP API.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import strawberry
from graphql import GraphQLField, GraphQLObjectType
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from strawberry.permission import BasePermission
from strawberry.types.field import StrawberryField

from profilegate.api.http import Guard
from profilegate.api.permissions import ALL_ROLES, RolePermission
from profilegate.api.schema import build_schema
from profilegate.app import create_app
from profilegate.domain.keys import Role
from profilegate.domain.storefront import MIN_ANONYMOUS_ID_LENGTH, STOREFRONT_EVENT_TYPES
from profilegate.settings import Settings

START_MARKER = "<!-- access-table:start -->"
END_MARKER = "<!-- access-table:end -->"
NEW_DOCUMENT = f"# Access: roles, storefront keys and shopper proofs\n\n{START_MARKER}\n{END_MARKER}\n"
PROFILE_TYPE = "Profile"
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})  # HEAD mirrors GET; OPTIONS is the CORS preflight


class Access(StrEnum):
    """What one cell says; the test knows how to drive each."""

    YES = "yes"
    NO = "—"
    GRANTED = "if granted"
    OPEN = "no key needed"
    OWN_VISITOR = "own visitor"
    PROVEN_SHOPPER = "own visitor + proven shopper"
    VISITOR_EVENTS = "behavioural events, own visitor"
    SHOPPER_EVENTS = "behavioural events, own visitor + proven shopper"
    SHOWN_ONLY = "extensions shown to shoppers"


_EVENT_NAMES = ", ".join(sorted(kind.value for kind in STOREFRONT_EVENT_TYPES))
MEANINGS: Mapping[Access, str] = {
    Access.YES: "allowed",
    Access.NO: "refused: `FORBIDDEN` (an HTTP endpoint answers 401 or 403)",
    Access.GRANTED: 'a partner key created with `fields: ["shopMetrics"]`; other partner keys are refused',
    Access.OPEN: "served without an API key",
    Access.OWN_VISITOR: (
        "only for its own visitor, `ref: {identity: {type: ANONYMOUS_ID, value}}` with a value of at "
        f"least {MIN_ANONYMOUS_ID_LENGTH} characters (a shorter one is invalid input naming the field); "
        "a known identity (EMAIL, PHONE, CUSTOMER_ID, LOYALTY_CARD) is refused with `NotPermittedError` "
        "(`missing: no_proof`), a profile `id` always (`server_only`)"
    ),
    Access.PROVEN_SHOPPER: (
        "its own visitor, and the identities the `Shopper-Proof` header names; another shopper is "
        "refused (`other_shopper`), an invalid proof too (`proof_refused`), a profile `id` always"
    ),
    Access.VISITOR_EVENTS: (
        f"only {_EVENT_NAMES} events, addressed by `anonymousId`; any other event is rejected, its "
        "reason naming its type and saying it comes from the shop's servers"
    ),
    Access.SHOPPER_EVENTS: "the same events, also addressed by an identity the proof names",
    Access.SHOWN_ONLY: (
        "only extensions whose definition has `shownToShopper: true`; `hasExtension` of another "
        "name is refused (`FORBIDDEN`)"
    ),
}


class Column(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"
    PARTNER = "partner"
    STOREFRONT = "storefront, no proof"
    PROVEN = "storefront, with proof"


ROLE_COLUMNS: Mapping[Role, Column] = {
    Role.ADMIN: Column.ADMIN,
    Role.INGEST: Column.INGEST,
    Role.PARTNER: Column.PARTNER,
}


@dataclass(frozen=True)
class Storefront:
    """What a storefront key may do on a row its role is admitted to."""

    without_proof: Access
    with_proof: Access
    note: str = ""


ALWAYS = Storefront(Access.YES, Access.YES)
REACH = Storefront(Access.OWN_VISITOR, Access.PROVEN_SHOPPER)
EVENTS = Storefront(Access.VISITOR_EVENTS, Access.SHOPPER_EVENTS)
SHOWN = Storefront(Access.SHOWN_ONLY, Access.SHOWN_ONLY)
OF_ITS_PROFILE = "of a profile the key may address"
GRAPHQL = Storefront(Access.YES, Access.YES, "any key; what each field admits is in these tables")

STOREFRONT: Mapping[str, Storefront] = {
    "Query.consentPurposes": ALWAYS,
    "Query.loyalty": REACH,
    "Query.loyaltyWhatIf": REACH,
    "Query.profile": REACH,
    "Query.tierPolicy": ALWAYS,
    "Query.viewer": ALWAYS,
    "Mutation.identify": Storefront(
        Access.OWN_VISITOR,
        Access.PROVEN_SHOPPER,
        f"`anonymousId` of {MIN_ANONYMOUS_ID_LENGTH}+ characters, every identity proven, "
        "no `traits`; never merges two profiles that each hold a known identity (`MergeBlockedError`)",
    ),
    "Mutation.setConsent": REACH,
    "Mutation.track": EVENTS,
    "GET /graphql": Storefront(
        Access.YES, Access.YES, "any key; in development GraphiQL's page (Accept: text/html) needs none"
    ),
    "POST /graphql": GRAPHQL,
    "WebSocket /graphql": Storefront(
        Access.YES, Access.YES, "any key, in a header or the first message; subscriptions as above"
    ),
    "POST /v1/track": EVENTS,
    **{
        f"Profile.{name}": Storefront(Access.YES, Access.YES, OF_ITS_PROFILE)
        for name in ("id", "version", "createdAt", "updatedAt", "consents", "consented", "loyalty")
    },
    "Profile.extensionNames": SHOWN,
    "Profile.hasExtension": SHOWN,
}

# Routes without a guard: what each serves, and who may call it.
UNGUARDED: Mapping[str, tuple[Access, str]] = {
    "GET /admin": (Access.OPEN, "the admin console's page (PROFILEGATE_ADMIN_CONSOLE); its data: /graphql"),
    "GET /admin/assets/{path}": (Access.OPEN, "the console's scripts and styles"),
    "GET /graphiql/assets/{path}": (Access.OPEN, "GraphiQL's scripts and styles (development only)"),
    "GET /favicon.ico": (Access.OPEN, "the gateway's icon, which browsers ask for"),
    "GET /healthz": (Access.OPEN, "liveness"),
    "GET /readyz": (Access.OPEN, "readiness: the store and the change feed"),
    "GET /metrics": (
        Access.NO,
        "Prometheus; only with its own scrape token (PROFILEGATE_METRICS_TOKEN) as the bearer",
    ),
}


@dataclass(frozen=True)
class Row:
    name: str  # `Query.profile`, `Profile.traits`, `POST /v1/track`
    cells: Mapping[Column, Access]
    note: str = ""


@dataclass(frozen=True)
class AccessTables:
    roots: Sequence[Row]  # root fields, then HTTP endpoints
    profile: Sequence[Row]


def documented_tables() -> AccessTables:
    """The tables of the schema and of the app serving every route: development (GraphiQL)
    with the console."""
    settings = Settings(mongodb_uri="mongodb://unused", env="development", admin_console=True)
    return access_tables(build_schema(), create_app(settings).routes)


def access_tables(schema: strawberry.Schema, routes: Iterable[BaseRoute]) -> AccessTables:
    graphql_schema = schema._schema  # graphql-core's, whose fields point back to Strawberry's
    operations = {
        "Query": graphql_schema.query_type,
        "Mutation": graphql_schema.mutation_type,
        "Subscription": graphql_schema.subscription_type,  # named ChangeSubscriptions in the SDL
    }
    roots = [
        _field_row(f"{operation}.{name}", field)
        for operation, root in operations.items()
        if root is not None
        for name, field in root.fields.items()
    ]
    endpoints = [row for route in routes for row in _route_rows(route)]
    profile_type = graphql_schema.get_type(PROFILE_TYPE)
    assert isinstance(profile_type, GraphQLObjectType)
    profile = [_field_row(f"{PROFILE_TYPE}.{name}", field) for name, field in profile_type.fields.items()]
    _check_declarations([*roots, *endpoints, *profile])
    return AccessTables(
        roots=sorted(roots, key=lambda row: row.name) + sorted(endpoints, key=_endpoint_order),
        profile=sorted(profile, key=lambda row: row.name),
    )


def _field_row(name: str, field: GraphQLField) -> Row:
    definition = field.extensions.get("strawberry-definition")
    assert isinstance(definition, StrawberryField), name
    return _row(name, _role_access(name, definition.permission_classes))


def _role_access(name: str, permissions: Sequence[type[BasePermission]]) -> dict[Role, Access]:
    """Every class must admit the role: outright, or a granted key."""
    declared = [p for p in permissions if issubclass(p, RolePermission)]
    if len(declared) < len(permissions):
        raise TypeError(f"{name}: a permission class does not declare its roles (RolePermission)")
    access: dict[Role, Access] = {}
    for role in Role:
        if all(role in p.roles for p in declared):
            access[role] = Access.YES
        elif all(role in p.roles | p.granted for p in declared):
            access[role] = Access.GRANTED
        else:
            access[role] = Access.NO
    return access


def _route_rows(route: BaseRoute) -> list[Row]:
    if isinstance(route, Mount):
        return [_endpoint_row(f"GET {route.path}/{{path}}", route.app)]
    if isinstance(route, WebSocketRoute):
        return [_endpoint_row(f"WebSocket {route.path}", route.endpoint)]
    assert isinstance(route, Route), route
    methods = sorted((route.methods or {"GET"}) - SKIPPED_METHODS)
    return [_endpoint_row(f"{method} {route.path}", route.endpoint) for method in methods]


def _endpoint_row(name: str, endpoint: object) -> Row:
    if isinstance(endpoint, Guard):
        roles = ALL_ROLES if endpoint.roles is None else endpoint.roles
        return _row(name, {role: Access.YES if role in roles else Access.NO for role in Role})
    if name not in UNGUARDED:
        raise ValueError(f"{name}: a route without a Guard must be declared in access_table.UNGUARDED")
    access, note = UNGUARDED[name]
    return Row(name, dict.fromkeys(Column, access), note)


def _row(name: str, access: Mapping[Role, Access]) -> Row:
    cells = {column: access[role] for role, column in ROLE_COLUMNS.items()}
    storefront = STOREFRONT.get(name)
    if access[Role.STOREFRONT] is Access.NO or storefront is None:
        cells[Column.STOREFRONT] = cells[Column.PROVEN] = access[Role.STOREFRONT]
        return Row(name, cells)
    cells[Column.STOREFRONT], cells[Column.PROVEN] = storefront.without_proof, storefront.with_proof
    return Row(name, cells, storefront.note)


def _check_declarations(rows: Sequence[Row]) -> None:
    """Every row a storefront key is admitted to says what it may do there; no declaration is
    left over from a row gone or closed to storefront keys."""
    admitted = {row.name for row in rows if row.cells[Column.STOREFRONT] is not Access.NO}
    undeclared = sorted(name for name in admitted if name not in STOREFRONT and name not in UNGUARDED)
    stale = sorted(set(STOREFRONT) - admitted)
    if undeclared or stale:
        raise ValueError(
            "access_table.STOREFRONT must declare what a storefront key may do on each row its role "
            f"is admitted to: undeclared {undeclared}, stale {stale}"
        )


def _endpoint_order(row: Row) -> tuple[str, str]:
    method, path = row.name.split(" ", 1)
    return path, method


def markdown(tables: AccessTables | None = None) -> str:
    """The region between the markers: two tables and what their cells mean."""
    tables = tables or documented_tables()
    lines = [
        "Root fields and HTTP endpoints:",
        "",
        *_table("Field or endpoint", tables.roots),
        "",
        "Fields of `Profile`, wherever a `Profile` is answered (`profile`, and the results of "
        "`upsertProfile`, `setConsent` and `identify`, which is how an ingest key sees one):",
        "",
        *_table("Profile field", tables.profile),
        "",
        "What the cells say:",
        "",
        *(f"- **{access.value}**: {meaning}." for access, meaning in MEANINGS.items()),
        "- Guarded endpoints answer an `OPTIONS` preflight (CORS) without a key; `HEAD` is `GET`.",
    ]
    return "\n".join(lines)


def _table(title: str, rows: Sequence[Row]) -> list[str]:
    header = [title, *(column.value for column in Column), "notes"]
    lines = [_line(header), _line(["---"] * len(header))]
    for row in rows:
        lines.append(_line([f"`{row.name}`", *(row.cells[c].value for c in Column), row.note]))
    return lines


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def with_table(document: str, table: str) -> str:
    """``document`` with the region between the markers replaced by ``table``."""
    pattern = re.compile(re.escape(START_MARKER) + r".*?" + re.escape(END_MARKER), re.S)
    if not pattern.search(document):
        raise ValueError(f"the document has no {START_MARKER} ... {END_MARKER} region")
    region = f"{START_MARKER}\n{table}\n{END_MARKER}"
    return pattern.sub(lambda _: region, document, count=1)

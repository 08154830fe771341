"""A schema extension that times each GraphQL operation and counts its errors by code.

It is the first extension, so it sees the errors after masking (an internal error counts as
``INTERNAL_SERVER_ERROR``). Subscriptions are not timed: they last as long as the client
stays. Errors without a code count as ``GRAPHQL_VALIDATION_FAILED`` when they are about the
request (parse and validation errors have no field path) and as ``UNCODED`` otherwise.
"""

import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from profilegate.api import prometheus

VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
UNCODED = "UNCODED"


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result = context.result
        found = (result.errors if result is not None else None) or context.pre_execution_errors or []
        executed = result is not None and not _refused(result.data, found)
        for error in found:
            prometheus.count_error("graphql", _code(error))
        if _is_subscription(self):
            return
        role = prometheus.role_of(getattr(context.context, "caller", None))
        prometheus.graphql_duration.labels(_operation(self, executed), role).observe(
            time.perf_counter() - started
        )


def _refused(data: object, found: list[GraphQLError]) -> bool:
    """Nothing executed: no data, and every error is about the request (no field path)."""
    return data is None and bool(found) and all(error.path is None for error in found)


def _operation(extension: SchemaExtension, executed: bool) -> str:
    """The operation's name; only a document that executed adds a name to the known ones."""
    try:
        name = extension.execution_context.operation_name
    except Exception:  # a document that does not parse
        name = None
    if not name:
        return prometheus.ANONYMOUS
    return prometheus.operation_names(name) if executed else prometheus.operation_names.known(name)


def _code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    return UNCODED if error.path is not None else VALIDATION_FAILED


def _is_subscription(extension: SchemaExtension) -> bool:
    try:
        return extension.execution_context.operation_type is OperationType.SUBSCRIPTION
    except Exception:  # no document, or an unknown operation name: nothing subscribed
        return False

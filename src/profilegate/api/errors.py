"""Typed error results (expected failures) and masking of unexpected ones."""

import logging
import uuid
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from profilegate.api import prometheus
from profilegate.domain import errors
from profilegate.domain.coupons import UnknownCampaign
from profilegate.domain.merges import MergeBlocked, UnmergeOutOfOrder
from profilegate.domain.segment_chains import SegmentChainRefused
from profilegate.domain.segment_parser import RuleError

log = logging.getLogger("profilegate.api")
ERROR_ID = "errorId"  # extensions key: the id a masked internal error was logged with


@strawberry.interface(description="An expected failure; `message` is for people, the type for code.")
class Error:
    message: str


@strawberry.type(description="A value in the input breaks a rule; `field` is its path.")
class InvalidInputError(Error):
    field: str


@strawberry.type(description="An identity already belongs to another profile.")
class IdentityConflictError(Error):
    identity: str
    profile_id: strawberry.ID


@strawberry.type(description="No profile answers to the given reference.")
class ProfileNotFoundError(Error):
    ref: str


@strawberry.type(description="The extension is not in the catalogue; define it first.")
class UnknownExtensionError(Error):
    name: str


@strawberry.type(description="No coupon campaign has this name; define it first.")
class UnknownCampaignError(Error):
    name: str


@strawberry.type(description="The caller's role may not do this to this object.")
class NotPermittedError(Error):
    pass


@strawberry.type(description="A guard keeps these profiles apart (a blocked identifier, the identity cap).")
class MergeBlockedError(Error):
    field: str


@strawberry.type(
    description="The profile the loser was merged into was merged on since: unmerge `unmergeFirst` first."
)
class UnmergeOutOfOrderError(Error):
    field: str
    unmerge_first: strawberry.ID


@strawberry.type(
    description="The segment rule does not validate; `line` and `column` (1-based) point at the problem."
)
class InvalidRuleError(Error):
    field: str
    line: int
    column: int


@strawberry.type(
    description="The rule makes a chain of in_segment loop or reach too deep; `chain` lists its segments."
)
class SegmentChainError(Error):
    field: str
    chain: list[str]


@strawberry.type(description="No tier policy has this version.")
class TierPolicyNotFoundError(Error):
    version: int


@strawberry.type(
    description="The policy is the same as a published version (`version`: the active or latest one)."
)
class TierPolicyUnchangedError(Error):
    version: int


@strawberry.type(description="The profile changed under the update too often; retry.")
class ConcurrentModificationError(Error):
    pass


def error_result(error: errors.DomainError) -> Error:
    """The typed result for an expected failure, counted by its type in the metrics."""
    result = _typed_result(error)
    prometheus.count_error("result", type(result).__name__)
    return result


def _typed_result(error: errors.DomainError) -> Error:
    match error:
        case RuleError():
            return InvalidRuleError(
                message=error.message, field=error.field, line=error.line, column=error.column
            )
        case SegmentChainRefused():
            return SegmentChainError(message=error.message, field=error.field, chain=list(error.chain))
        case errors.InvalidInput():
            return InvalidInputError(message=error.message, field=error.field)
        case errors.IdentityConflict():
            return IdentityConflictError(
                message=error.message,
                identity=error.conflict.key,
                profile_id=strawberry.ID(error.conflict.profile_id),
            )
        case errors.ProfileNotFound():
            return ProfileNotFoundError(message=error.message, ref=error.ref)
        case errors.UnknownExtension():
            return UnknownExtensionError(message=error.message, name=error.name)
        case UnknownCampaign():
            return UnknownCampaignError(message=error.message, name=error.name)
        case UnmergeOutOfOrder():
            return UnmergeOutOfOrderError(
                message=error.message, field=error.field, unmerge_first=strawberry.ID(error.first)
            )
        case MergeBlocked():
            return MergeBlockedError(message=error.message, field=error.field)
        case errors.NotPermitted():
            return NotPermittedError(message=error.message)
        case errors.TierPolicyNotFound():
            return TierPolicyNotFoundError(message=error.message, version=error.version)
        case errors.TierPolicyUnchanged():
            return TierPolicyUnchangedError(message=error.message, version=error.version)
        case _:
            return ConcurrentModificationError(message=error.message)


def bad_input(error: errors.InvalidInput) -> GraphQLError:
    """For queries, which have no result union: a GraphQL error naming the field."""
    return GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field})


def log_errors(errors: list[GraphQLError]) -> None:
    """A client's mistake (a value refused, a limit, a permission, a document that does not
    parse) is one INFO line without a traceback; an unexpected error is logged once, at ERROR
    with its traceback and the id its masked answer carries."""
    for error in errors:
        if _unexpected(error):
            _log_internal(error)
        else:
            code = (error.extensions or {}).get("code", "")
            log.info("request refused: %s", error.message, extra={"code": code})


def _log_internal(error: GraphQLError) -> str:
    error_id = uuid.uuid4().hex[:16]
    log.error("internal error %s", error_id, exc_info=error.original_error, extra={"error_id": error_id})
    error.extensions = {**(error.extensions or {}), ERROR_ID: error_id}
    return error_id


class MaskInternalErrors(MaskErrors):
    """Replaces unexpected errors by a message with the id they were logged with."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_unexpected, error_message="Internal server error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        logged = (error.extensions or {}).get(ERROR_ID)
        error_id = logged if isinstance(logged, str) else _log_internal(error)
        extensions: dict[str, Any] = {"code": "INTERNAL_SERVER_ERROR", ERROR_ID: error_id}
        return GraphQLError(
            f"Internal server error (id {error_id})",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )


def _unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)

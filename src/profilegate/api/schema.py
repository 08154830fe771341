"""The schema: every domain's queries and mutations merged into one root each."""

import functools
from collections.abc import Mapping
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from profilegate.api.aggregate_check import AggregateCheckQueries
from profilegate.api.argument_errors import DescribeArgumentErrors
from profilegate.api.audit import AuditQueries, audit_root_fields
from profilegate.api.changes import ChangeSubscriptions
from profilegate.api.coupons import CouponMutations, CouponQueries
from profilegate.api.destinations import DestinationMutations, DestinationQueries
from profilegate.api.errors import (
    ConcurrentModificationError,
    IdentityConflictError,
    InvalidInputError,
    InvalidRuleError,
    MaskInternalErrors,
    MergeBlockedError,
    NotPermittedError,
    ProfileNotFoundError,
    TierPolicyNotFoundError,
    UnknownCampaignError,
    UnknownExtensionError,
    UnmergeOutOfOrderError,
    log_errors,
)
from profilegate.api.extensions import ExtensionMutations, ExtensionQueries
from profilegate.api.gdpr import GdprMutations, GdprQueries
from profilegate.api.identify import IdentifyMutations, IdentifyQueries
from profilegate.api.keys import KeyMutations, KeyQueries
from profilegate.api.limits import CheckBeforeExecuting, CheckBeforeParsing
from profilegate.api.loyalty import LoyaltyMutations, LoyaltyQueries
from profilegate.api.merges import MergeMutations
from profilegate.api.operation_metrics import OperationMetrics
from profilegate.api.persisted import (
    PersistedMutations,
    PersistedParserCache,
    PersistedQueries,
    PersistedValidationCache,
)
from profilegate.api.profiles import ProfileMutations, ProfileQueries
from profilegate.api.segments import SegmentMutations, SegmentQueries
from profilegate.api.shop_metrics import ShopMetricQueries
from profilegate.api.tracking import TrackingMutations

Query = merge_types(
    "Query",
    (
        ProfileQueries,
        LoyaltyQueries,
        SegmentQueries,
        ExtensionQueries,
        IdentifyQueries,
        KeyQueries,
        GdprQueries,
        AuditQueries,
        PersistedQueries,
        CouponQueries,
        ShopMetricQueries,
        AggregateCheckQueries,
        DestinationQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ProfileMutations,
        IdentifyMutations,
        MergeMutations,
        ExtensionMutations,
        TrackingMutations,
        LoyaltyMutations,
        SegmentMutations,
        KeyMutations,
        GdprMutations,
        PersistedMutations,
        CouponMutations,
        DestinationMutations,
    ),
)

audit_root_fields(Mutation, Query)


class GatewaySchema(strawberry.Schema):
    """Strawberry's schema, logging a client's mistakes as one INFO line each and an unexpected
    error once at ERROR with its traceback (strawberry logs every error at ERROR)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors)


DOCUMENT_CACHE_SIZE = 1024  # ad-hoc documents whose parse and validation are kept, per process


def build_schema(
    *, production: bool = False, limits: Mapping[str, Mapping[str, int]] | None = None
) -> strawberry.Schema:
    """``production``: no introspection and no field suggestions. ``limits``: per role, the
    query limits that differ from ``api.limits.DEFAULT_LIMITS``."""
    hidden: list[Any] = [DisableIntrospection] if production else []
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=ChangeSubscriptions,
        types=[
            InvalidInputError,
            IdentityConflictError,
            ProfileNotFoundError,
            UnknownExtensionError,
            NotPermittedError,
            MergeBlockedError,
            ConcurrentModificationError,
            TierPolicyNotFoundError,
            InvalidRuleError,
            UnknownCampaignError,
            UnmergeOutOfOrderError,
        ],
        extensions=[
            OperationMetrics,  # first: it sees the errors as masked
            MaskInternalErrors,
            DescribeArgumentErrors,  # after the masking: its errors are the client's, never masked
            functools.partial(CheckBeforeParsing, limits),  # before the parser cache
            functools.partial(PersistedParserCache, maxsize=DOCUMENT_CACHE_SIZE),
            *hidden,
            functools.partial(PersistedValidationCache, maxsize=DOCUMENT_CACHE_SIZE),
            functools.partial(CheckBeforeExecuting, limits),  # after the validation cache
        ],
        config=StrawberryConfig(disable_field_suggestions=production),
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"

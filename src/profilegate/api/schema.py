"""The schema: every domain's queries and mutations merged into one root each."""

import functools

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from profilegate.api.audit import AuditQueries, AuditTrail
from profilegate.api.changes import ChangeSubscriptions
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
    UnknownExtensionError,
)
from profilegate.api.extensions import ExtensionMutations, ExtensionQueries
from profilegate.api.gdpr import GdprMutations, GdprQueries
from profilegate.api.identify import IdentifyMutations, IdentifyQueries
from profilegate.api.keys import KeyMutations, KeyQueries
from profilegate.api.loyalty import LoyaltyMutations, LoyaltyQueries
from profilegate.api.operation_metrics import OperationMetrics
from profilegate.api.profiles import ProfileMutations, ProfileQueries
from profilegate.api.segments import SegmentMutations, SegmentQueries
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
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ProfileMutations,
        IdentifyMutations,
        ExtensionMutations,
        TrackingMutations,
        LoyaltyMutations,
        SegmentMutations,
        KeyMutations,
        GdprMutations,
    ),
)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
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
        ],
        extensions=[
            OperationMetrics,  # first: it sees the errors as masked
            MaskInternalErrors,
            AuditTrail,
            functools.partial(ParserCache, maxsize=1024),
            functools.partial(ValidationCache, maxsize=1024),
        ],
        config=StrawberryConfig(),
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"

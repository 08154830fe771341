"""The domain's enums, registered once with the schema under their GraphQL names."""

import strawberry

from profilegate.domain.changes import ChangeKind
from profilegate.domain.events import Channel, EventType
from profilegate.domain.identities import IdentityType
from profilegate.domain.keys import Role
from profilegate.domain.tiers import BenefitType, LoyaltyReason, OverrideEffect, RetentionKind, TierMetric

strawberry.enum(
    IdentityType, name="IdentityType", description="The kinds of identity a profile can be found by."
)
strawberry.enum(Role, name="Role", description="What an API key may do.")
strawberry.enum(Channel, name="Channel", description="Where the customer did it.")
strawberry.enum(EventType, name="EventType", description="What the customer did.")
strawberry.enum(TierMetric, name="TierMetric", description="What a tier policy's thresholds measure.")
strawberry.enum(
    RetentionKind,
    name="TierRetentionKind",
    description="How long a tier reached is kept when the metric drops.",
)
strawberry.enum(OverrideEffect, name="TierOverrideEffect", description="What an extension does to the tier.")
strawberry.enum(LoyaltyReason, name="LoyaltyReason", description="Which rule decided the tier.")
strawberry.enum(BenefitType, name="BenefitType", description="The type of a benefit's value.")
strawberry.enum(ChangeKind, name="ChangeKind", description="What a change-feed entry tells.")

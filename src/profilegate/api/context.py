"""What every resolver gets: repositories, the caller, the rules and one ``now`` per request."""

from dataclasses import dataclass
from datetime import datetime

import strawberry

from profilegate.domain.keys import Principal
from profilegate.service.identify import IdentifyRules
from profilegate.service.profiles import ProfileRules
from profilegate.service.segments import SegmentCatalogue, SegmentRules
from profilegate.service.tiers import ActivePolicy, TierRules
from profilegate.service.tracking import TrackingRules
from profilegate.storage.store import Repositories


@dataclass(frozen=True)
class Context:
    repos: Repositories
    principal: Principal
    rules: ProfileRules
    tracking: TrackingRules
    identify: IdentifyRules
    phone_region: str
    tier_policy: ActivePolicy
    tier_rules: TierRules
    segments: SegmentCatalogue
    segment_rules: SegmentRules
    now: datetime


type Info = strawberry.Info[Context, None]

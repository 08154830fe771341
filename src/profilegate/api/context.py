"""What every resolver gets: repositories, the caller, the rules and one ``now`` per request."""

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from starlette.websockets import WebSocket

from profilegate.domain.errors import NotPermitted
from profilegate.domain.keys import Principal
from profilegate.service.changes import ChangeRecorder
from profilegate.service.feed import FeedFollower
from profilegate.service.identify import IdentifyRules
from profilegate.service.profiles import ProfileRules
from profilegate.service.segments import SegmentCatalogue, SegmentRules
from profilegate.service.tiers import ActivePolicy, TierRules
from profilegate.service.tracking import TrackingRules
from profilegate.storage.store import Repositories


@dataclass
class Context:
    """Per request; over a WebSocket, per connection (then ``caller`` may come with the
    connection's first message, and ``connection_params`` holds that message's payload)."""

    repos: Repositories
    caller: Principal | None
    rules: ProfileRules
    tracking: TrackingRules
    identify: IdentifyRules
    phone_region: str
    tier_policy: ActivePolicy
    tier_rules: TierRules
    segments: SegmentCatalogue
    segment_rules: SegmentRules
    feed: ChangeRecorder
    follower: FeedFollower
    now: datetime
    socket: WebSocket | None = None
    connection_params: dict[str, Any] | None = None
    scope: MutableMapping[str, Any] = field(default_factory=dict)  # the request's ASGI scope

    @property
    def principal(self) -> Principal:
        if self.caller is None:
            raise NotPermitted("a valid API key is required")
        return self.caller


type Info = strawberry.Info[Context, None]

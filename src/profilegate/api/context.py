"""What every resolver gets: repositories, the caller, the rules and one ``now`` per request."""

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from starlette.websockets import WebSocket

from profilegate.api.rate_limits import client_address
from profilegate.api.storefront import StorefrontAccess, event_screen
from profilegate.domain.errors import NotPermitted
from profilegate.domain.identities import Identity
from profilegate.domain.keys import Principal, Role
from profilegate.domain.refs import ProfileRef
from profilegate.domain.storefront import (
    Proof,
    ShopperNotProven,
    check_anonymous_id,
    check_identity,
    check_reach,
)
from profilegate.service.aggregate_check import CheckRules
from profilegate.service.changes import ChangeRecorder
from profilegate.service.destinations.deliverer import Deliveries
from profilegate.service.feed import FeedFollower
from profilegate.service.identify import IdentifyRules
from profilegate.service.profiles import ProfileRules
from profilegate.service.segments import SegmentCatalogue, SegmentRules
from profilegate.service.tiers import ActivePolicy, TierRules
from profilegate.service.tracking import Screen, TrackingRules
from profilegate.storage.store import Repositories


@dataclass
class Context:
    """Per request; over a WebSocket, per connection (then ``caller`` may come with the
    connection's first message, and ``connection_params`` holds that message's payload)."""

    repos: Repositories
    caller: Principal | None
    rules: ProfileRules
    tracking: TrackingRules
    check: CheckRules
    identify: IdentifyRules
    phone_region: str
    tier_policy: ActivePolicy
    tier_rules: TierRules
    segments: SegmentCatalogue
    segment_rules: SegmentRules
    feed: ChangeRecorder
    follower: FeedFollower
    storefront: StorefrontAccess
    deliveries: Deliveries
    now: datetime
    shopper: Proof = None  # a storefront request's shopper proof (None: it sent none)
    socket: WebSocket | None = None
    connection_params: dict[str, Any] | None = None
    scope: MutableMapping[str, Any] = field(default_factory=dict)  # the request's ASGI scope

    @property
    def principal(self) -> Principal:
        if self.caller is None:
            raise NotPermitted("a valid API key is required")
        return self.caller

    @property
    def storefront_caller(self) -> bool:
        return self.caller is not None and self.caller.role is Role.STOREFRONT

    def reach(self, ref: ProfileRef, field: str = "ref") -> None:
        """Raise unless the caller may address ``ref``: any server key may; a storefront key
        its own visitor, or a shopper its proof names (``domain.storefront``)."""
        if self.storefront_caller:
            self._counted(check_reach, ref, self.shopper, field)

    def reach_identity(self, identity: Identity, field: str) -> None:
        if self.storefront_caller:
            self._counted(check_identity, identity, self.shopper, field)

    def reach_anonymous_id(self, value: str, field: str) -> None:
        if self.storefront_caller:
            check_anonymous_id(value, field)

    def event_screen(self) -> Screen | None:
        """For a storefront key, why it may not send an event; server keys send any."""
        return event_screen(self.principal, self.shopper, self.storefront, self.client)

    @property
    def client(self) -> str | None:
        return client_address(self.scope)

    def _counted[*A](self, check: Callable[[*A], None], *args: *A) -> None:
        try:
            check(*args)
        except ShopperNotProven as refusal:
            self.storefront.refused(self.principal, self.client, refusal.missing)
            raise


type Info = strawberry.Info[Context, None]

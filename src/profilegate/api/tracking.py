"""The ``track`` mutation: typed event payloads through a ``@oneOf`` input."""

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from profilegate.api import prometheus
from profilegate.api.context import Info
from profilegate.api.permissions import allow
from profilegate.api.types import IdentityInput, ProfileRefInput
from profilegate.domain.events import MAX_ENGAGED_SECONDS, Channel
from profilegate.domain.keys import Role
from profilegate.service.tracking import EventOutcome, Status, TrackResult, track

TRACKERS = allow(Role.ADMIN, Role.INGEST, Role.STOREFRONT)
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
Decimal = str  # amounts travel as decimal strings such as "99.50", never as floats
ENGAGED_SECONDS = (
    f"Seconds the visitor was engaged with the page, at least 0; more than {MAX_ENGAGED_SECONDS} "
    "counts as that many. Absent: the gap to the visitor's next event tells (docs/metrics.md)."
)


@strawberry.enum(name="EventStatus")
class EventStatusType(Enum):
    ACCEPTED = Status.ACCEPTED
    DUPLICATE = Status.DUPLICATE
    REJECTED = Status.REJECTED


@strawberry.input
class PageViewInput:
    url: str | None = None
    title: str | None = None
    referrer: str | None = None
    engaged_seconds: float | None = strawberry.field(default=None, description=ENGAGED_SECONDS)


@strawberry.input
class ProductViewInput:
    sku: str
    category: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    engaged_seconds: float | None = strawberry.field(default=None, description=ENGAGED_SECONDS)


@strawberry.input
class AddToCartInput:
    sku: str
    category: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    quantity: int = 1


@strawberry.input
class CheckoutStartedInput:
    cart_total: Decimal | None = None
    currency: str | None = None


@strawberry.input
class LineItemInput:
    sku: str
    price: Decimal
    quantity: int = 1
    category: str | None = None
    discount: Decimal | None = strawberry.field(
        default=None,
        description="The line's part of the order's `discount`, taken off its revenue in `topProducts`.",
    )


@strawberry.input
class OrderCompletedInput:
    order_id: str
    total: Decimal
    currency: str
    items: list[LineItemInput]
    shipping: Decimal | None = None
    discount: Decimal | None = None
    coupon_code: str | None = strawberry.field(
        default=None,
        description="An issued coupon's code redeems it, by its campaign's rule (see issueCoupon).",
    )
    store_id: str | None = None
    payment_method: str | None = strawberry.field(
        default=None, description='How the order was paid, e.g. "card"; shopMetrics.paymentMethods.'
    )


@strawberry.input
class ReturnedItemInput:
    sku: str
    quantity: int = 1


@strawberry.input
class OrderReturnedInput:
    order_id: str
    amount: Decimal
    currency: str | None = None
    items: list[ReturnedItemInput] | None = None


@strawberry.input
class OrderCancelledInput:
    order_id: str
    reason: str | None = None


@strawberry.input
class CouponRedeemedInput:
    code: str
    order_id: str | None = None


@strawberry.input
class NewsletterSubscribedInput:
    list_id: str | None = None


@strawberry.input
class EmailOpenedInput:
    campaign_id: str


@strawberry.input
class EmailClickedInput:
    campaign_id: str
    url: str | None = None


@strawberry.input
class StoreVisitInput:
    store_id: str


@strawberry.input
class CallcenterContactInput:
    topic: str | None = None


@strawberry.input
class CustomEventInput:
    name: str
    properties: JSON | None = None


@strawberry.input(one_of=True, description="Exactly one typed payload; its field names the event type.")
class EventPayloadInput:
    page_view: PageViewInput | None = strawberry.UNSET
    product_view: ProductViewInput | None = strawberry.UNSET
    add_to_cart: AddToCartInput | None = strawberry.UNSET
    checkout_started: CheckoutStartedInput | None = strawberry.UNSET
    order_completed: OrderCompletedInput | None = strawberry.UNSET
    order_returned: OrderReturnedInput | None = strawberry.UNSET
    order_cancelled: OrderCancelledInput | None = strawberry.UNSET
    coupon_redeemed: CouponRedeemedInput | None = strawberry.UNSET
    newsletter_subscribed: NewsletterSubscribedInput | None = strawberry.UNSET
    email_opened: EmailOpenedInput | None = strawberry.UNSET
    email_clicked: EmailClickedInput | None = strawberry.UNSET
    store_visit: StoreVisitInput | None = strawberry.UNSET
    callcenter_contact: CallcenterContactInput | None = strawberry.UNSET
    custom: CustomEventInput | None = strawberry.UNSET


@strawberry.input(
    description="One event. Address the profile with `ref` or `anonymousId`; an order may be addressed by "
    "an issued coupon's `couponCode` alone (a store purchase), and then lands on the coupon's profile."
)
class EventInput:
    payload: EventPayloadInput
    at: datetime
    channel: Channel
    id: strawberry.ID | None = strawberry.field(default=None, description="Minted when absent.")
    ref: ProfileRefInput | None = None
    anonymous_id: str | None = None


@strawberry.type(name="EventResult")
class EventResultType:
    id: strawberry.ID | None
    status: EventStatusType
    reason: str | None

    @classmethod
    def from_domain(cls, outcome: EventOutcome) -> "EventResultType":
        return cls(
            id=None if outcome.id is None else strawberry.ID(outcome.id),
            status=EventStatusType(outcome.status),
            reason=outcome.reason,
        )


@strawberry.type(name="TrackResult")
class TrackResultType:
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResultType]

    @classmethod
    def from_domain(cls, result: TrackResult) -> "TrackResultType":
        return cls(
            accepted=result.count(Status.ACCEPTED),
            duplicates=result.count(Status.DUPLICATE),
            rejected=result.count(Status.REJECTED),
            results=[EventResultType.from_domain(outcome) for outcome in result.results],
        )


@strawberry.type
class TrackingMutations:
    @strawberry.mutation(
        permission_classes=[TRACKERS],
        description="Track up to 500 events; each is accepted, a duplicate, or rejected with a reason.",
    )
    async def track(self, info: Info, events: list[EventInput]) -> TrackResultType:
        context = info.context
        if len(events) > context.tracking.max_batch:
            raise oversized_batch(len(events), context.tracking.max_batch)
        raw = [raw_event(event) for event in events]
        result = await track(
            context.repos,
            raw,
            context.tracking,
            context.now,
            changed=context.segments.follow(context.now, context.feed),
            observer=context.feed,
            screen=context.event_screen(),
        )
        prometheus.count_outcomes(result.results, via="graphql")
        return TrackResultType.from_domain(result)


def oversized_batch(count: int, limit: int, advice: str = "") -> GraphQLError:
    """A batch over the limit is refused whole, before any of its events is looked at."""
    message = (
        f"events: the batch holds {count} events, more than the limit of {limit} events per batch; "
        f"nothing was applied{advice}"
    )
    return GraphQLError(message, extensions={"code": BATCH_TOO_LARGE, "field": "events", "limit": limit})


def raw_event(event: EventInput) -> dict[str, Any]:
    """The same JSON shape ``POST /v1/track`` takes, so both paths share one validation."""
    kind, payload = next(
        (field.name, value)
        for field in dataclasses.fields(event.payload)
        if (value := getattr(event.payload, field.name)) not in (None, strawberry.UNSET)
    )
    properties = _plain(payload)
    if kind == "custom" and isinstance(properties.get("properties"), dict):
        properties = {**properties.pop("properties"), **properties}
    raw: dict[str, Any] = {"type": kind, "at": event.at, "channel": event.channel, "properties": properties}
    if event.id is not None:
        raw["id"] = str(event.id)
    if event.anonymous_id is not None:
        raw["anonymousId"] = event.anonymous_id
    if isinstance(event.ref, ProfileRefInput):
        identity = event.ref.identity
        if isinstance(identity, IdentityInput):
            raw["identity"] = {"type": identity.type.name, "value": identity.value}
        else:
            raw["profileId"] = str(event.ref.id)
    return raw


def _plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(item)
            for field in dataclasses.fields(value)
            if (item := getattr(value, field.name)) not in (None, strawberry.UNSET)
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value

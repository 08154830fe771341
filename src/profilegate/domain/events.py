"""Tracked events: a validated envelope and one typed payload per event type.

Raw events (JSON from ``/v1/track`` or converted from GraphQL input) are parsed into
:class:`TrackedEvent`, with money in minor units of the base currency. Anything wrong is an
:class:`InvalidInput` naming the field, so a batch can reject that event and apply the rest.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from profilegate.domain.errors import InvalidInput, invalid_input
from profilegate.domain.expected_forms import form
from profilegate.domain.free_form import FreeFormLimits, check_free_form
from profilegate.domain.identities import IdentityType, anonymous_id, normalise_identity
from profilegate.domain.money import Currencies
from profilegate.domain.refs import ProfileRef

MAX_ITEMS = 500
MAX_QUANTITY = 100_000
MAX_EVENT_ID_LENGTH = 128
# Engaged time a page or product view may report; more is taken as this much (a tab left open
# for hours is not hours of reading). docs/metrics.md
MAX_ENGAGED_SECONDS = 3600

Text = Annotated[str, Field(min_length=1, max_length=256)]
LongText = Annotated[str, Field(max_length=2048)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=18)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]
CurrencyCode = Annotated[
    str, Field(pattern=form(r"^[A-Z]{3}$", "an ISO 4217 code of three capital letters, e.g. EUR"))
]
# A JSON number of seconds (not a string, not a boolean), at least 0, capped at the maximum.
EngagedSeconds = Annotated[
    float,
    Field(strict=True, ge=0, allow_inf_nan=False),
    AfterValidator(lambda seconds: min(seconds, MAX_ENGAGED_SECONDS)),
]


class EventType(StrEnum):
    PAGE_VIEW = "page_view"
    PRODUCT_VIEW = "product_view"
    ADD_TO_CART = "add_to_cart"
    CHECKOUT_STARTED = "checkout_started"
    ORDER_COMPLETED = "order_completed"
    ORDER_RETURNED = "order_returned"
    ORDER_CANCELLED = "order_cancelled"
    COUPON_REDEEMED = "coupon_redeemed"
    NEWSLETTER_SUBSCRIBED = "newsletter_subscribed"
    EMAIL_OPENED = "email_opened"
    EMAIL_CLICKED = "email_clicked"
    STORE_VISIT = "store_visit"
    CALLCENTER_CONTACT = "callcenter_contact"
    CUSTOM = "custom"


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    STORE = "store"
    EMAIL = "email"
    CALLCENTER = "callcenter"
    PARTNER = "partner"


class _Properties(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


class PageView(_Properties):
    url: LongText | None = None
    title: LongText | None = None
    referrer: LongText | None = None
    engaged_seconds: EngagedSeconds | None = None


class _Product(_Properties):
    sku: Text
    category: Text | None = None
    price: Amount | None = None
    currency: CurrencyCode | None = None


class ProductView(_Product):
    engaged_seconds: EngagedSeconds | None = None


class AddToCart(_Product):
    quantity: Quantity = 1


class CheckoutStarted(_Properties):
    cart_total: Amount | None = None
    currency: CurrencyCode | None = None


class LineItem(_Properties):
    sku: Text
    category: Text | None = None
    price: Amount
    quantity: Quantity = 1
    # The line's part of the order's ``discount`` (which includes it), when the shop says so:
    # the product's revenue in shopMetrics.topProducts is price x quantity less it.
    discount: Amount | None = None

    @model_validator(mode="after")
    def _discount_within_the_line(self) -> "LineItem":
        if self.discount is not None and self.discount > self.price * self.quantity:
            raise ValueError(f"the discount {self.discount} exceeds the line's price x quantity")
        return self


class OrderCompleted(_Properties):
    order_id: Text
    total: Amount
    currency: CurrencyCode
    items: list[LineItem] = Field(min_length=1, max_length=MAX_ITEMS)
    shipping: Amount = Decimal(0)
    discount: Amount = Decimal(0)
    coupon_code: Text | None = None
    store_id: Text | None = None
    payment_method: Text | None = None  # e.g. "card", "paypal", "invoice"; shopMetrics.paymentMethods


class ReturnedItem(_Properties):
    sku: Text
    quantity: Quantity = 1


class OrderReturned(_Properties):
    order_id: Text
    amount: Amount
    currency: CurrencyCode | None = None
    items: list[ReturnedItem] = Field(default_factory=list, max_length=MAX_ITEMS)


class OrderCancelled(_Properties):
    order_id: Text
    reason: Text | None = None


class CouponRedeemed(_Properties):
    code: Text
    order_id: Text | None = None


class NewsletterSubscribed(_Properties):
    list_id: Text | None = None


class EmailOpened(_Properties):
    campaign_id: Text


class EmailClicked(_Properties):
    campaign_id: Text
    url: LongText | None = None


class StoreVisit(_Properties):
    store_id: Text


class CallcenterContact(_Properties):
    topic: Text | None = None


class Custom(_Properties):
    name: Annotated[
        str,
        Field(
            pattern=form(
                r"^[a-z][a-z0-9_]{0,62}$",
                "lower-case letters, digits and '_', starting with a letter, at most 63",
            )
        ),
    ]


PAYLOADS: dict[EventType, type[_Properties]] = {
    EventType.PAGE_VIEW: PageView,
    EventType.PRODUCT_VIEW: ProductView,
    EventType.ADD_TO_CART: AddToCart,
    EventType.CHECKOUT_STARTED: CheckoutStarted,
    EventType.ORDER_COMPLETED: OrderCompleted,
    EventType.ORDER_RETURNED: OrderReturned,
    EventType.ORDER_CANCELLED: OrderCancelled,
    EventType.COUPON_REDEEMED: CouponRedeemed,
    EventType.NEWSLETTER_SUBSCRIBED: NewsletterSubscribed,
    EventType.EMAIL_OPENED: EmailOpened,
    EventType.EMAIL_CLICKED: EmailClicked,
    EventType.STORE_VISIT: StoreVisit,
    EventType.CALLCENTER_CONTACT: CallcenterContact,
    EventType.CUSTOM: Custom,
}


class _IdentityEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["EMAIL", "CUSTOMER_ID", "ANONYMOUS_ID", "LOYALTY_CARD", "PHONE"]
    value: Annotated[str, Field(max_length=254)]


class _Envelope(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    id: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_EVENT_ID_LENGTH,
                pattern=form(r"^[\x21-\x7e]+$", "printable ASCII without spaces"),
            ),
        ]
        | None
    ) = None
    type: EventType
    at: datetime
    channel: Channel
    identity: _IdentityEnvelope | None = None
    anonymous_id: Annotated[str, Field(min_length=1, max_length=254)] | None = None
    profile_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


_ENVELOPE = TypeAdapter(_Envelope)


class RedeemedCoupon(BaseModel):
    """The coupon an order redeemed, as the event log keeps it: its campaign and the channel
    it was handed out on (an e-mail coupon redeemed in the store links the two channels)."""

    model_config = ConfigDict(frozen=True)

    code: str
    campaign: str
    issued_on: Channel


class TrackedEvent(BaseModel):
    """A valid event, ready to apply: money in minor units of the base currency.

    ``coupon_code``: the code an order carries, as typed; ``redeemed``: the coupon it redeemed,
    set by tracking once the redemption is stored. An order that names no customer but carries
    a code has an empty ``target`` until tracking addresses it to the coupon's profile.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    type: EventType
    at: datetime
    channel: Channel
    target: ProfileRef
    amount: int = 0
    order_id: str | None = None
    categories: tuple[tuple[str, int], ...] = ()
    name: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    coupon_code: str | None = None
    redeemed: RedeemedCoupon | None = None

    @property
    def day(self) -> str:
        return self.at.date().isoformat()

    @property
    def addressed(self) -> bool:
        """Whether the event names its profile (an order may name it through its coupon alone)."""
        return self.target.id is not None or self.target.identity is not None


# What one event's ``properties`` may hold, the only free-form part of an event. Segment
# refuses events over 32 KB; nesting and keys are capped an order of magnitude under
# MongoDB's 100 levels, so the logged event document stays far inside MongoDB's limits.
PROPERTY_LIMITS = FreeFormLimits(
    max_bytes=32_768, max_keys=512, max_depth=10, max_key_length=128, max_string_length=8192
)


class EventRules(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    currencies: Currencies = Currencies()
    max_future_skew: timedelta = timedelta(minutes=5)
    phone_region: str = "DE"
    properties: FreeFormLimits = PROPERTY_LIMITS


def parse_event(raw: object, rules: EventRules, now: datetime) -> TrackedEvent:
    """Validate one raw event; raise :class:`InvalidInput` naming the first bad field."""
    try:
        envelope = _ENVELOPE.validate_python(raw)
    except ValidationError as error:
        raise invalid_input(error, "", whole="event") from error
    if envelope.at.tzinfo is None:
        raise InvalidInput("at", "needs a time zone, e.g. 2026-11-20T10:00:00Z")
    at = envelope.at.astimezone(UTC)
    if at > now + rules.max_future_skew:
        raise InvalidInput("at", f"lies more than {rules.max_future_skew} in the future")
    check_free_form(envelope.properties, rules.properties, "properties")
    properties = _payload(envelope.type, envelope.properties)
    coupon_code = properties.coupon_code if isinstance(properties, OrderCompleted) else None
    return TrackedEvent(
        id=envelope.id or uuid.uuid4().hex,
        type=envelope.type,
        at=at,
        channel=envelope.channel,
        target=_target(envelope, rules.phone_region, coupon_code),
        amount=_amount(properties, rules.currencies),
        order_id=getattr(properties, "order_id", None),
        categories=_categories(properties),
        name=properties.name if isinstance(properties, Custom) else None,
        properties=properties.model_dump(mode="json", by_alias=True, exclude_none=True),
        coupon_code=coupon_code,
    )


def _payload(kind: EventType, raw: dict[str, Any]) -> _Properties:
    try:
        payload = PAYLOADS[kind].model_validate(raw)
    except ValidationError as error:
        raise invalid_input(error, "properties") from error
    if isinstance(payload, OrderCompleted):
        _check_total(payload)
    return payload


def _check_total(order: OrderCompleted) -> None:
    lines = sum((item.price * item.quantity for item in order.items), Decimal(0))
    expected = lines + order.shipping - order.discount
    tolerance = Decimal("0.01") * len(order.items)  # one cent of rounding per line
    if abs(order.total - expected) > tolerance:
        raise InvalidInput(
            "properties.total",
            f"{order.total} does not match line items plus shipping minus discount ({expected})",
        )


def _amount(payload: _Properties, currencies: Currencies) -> int:
    match payload:
        case OrderCompleted():
            return currencies.to_minor(payload.total, payload.currency, "properties.total")
        case OrderReturned():
            currency = payload.currency or currencies.base
            return currencies.to_minor(payload.amount, currency, "properties.amount")
        case _:
            return 0


def _categories(payload: _Properties) -> tuple[tuple[str, int], ...]:
    match payload:
        case OrderCompleted():
            return tuple((i.category, i.quantity) for i in payload.items if i.category)
        case AddToCart() if payload.category:
            return ((payload.category, payload.quantity),)
        case _Product() if payload.category:
            return ((payload.category, 1),)
        case _:
            return ()


def _target(envelope: _Envelope, phone_region: str, coupon_code: str | None) -> ProfileRef:
    if envelope.identity is not None:
        kind = IdentityType[envelope.identity.type]
        return ProfileRef(
            identity=normalise_identity(
                kind, envelope.identity.value, field="identity", phone_region=phone_region
            )
        )
    if envelope.anonymous_id is not None:
        return ProfileRef(identity=anonymous_id(envelope.anonymous_id))
    if envelope.profile_id is not None:
        return ProfileRef(id=envelope.profile_id)
    if coupon_code is not None:
        return ProfileRef()  # the coupon names the customer (a store purchase with a code only)
    raise InvalidInput("identity", "an event needs an identity, an anonymousId or a profileId")

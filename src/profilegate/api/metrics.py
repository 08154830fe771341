"""``Profile.metrics``: what the profile's events add up to, lifetime or over a rolling window."""

from collections.abc import Callable
from datetime import datetime

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import bad_input
from profilegate.domain.aggregates import Aggregates, DayBucket
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel, EventType
from profilegate.domain.money import Currencies


@strawberry.type(description='An amount of money; `amount` is a decimal string, e.g. "99.50".')
class Money:
    amount: str
    currency: str

    @classmethod
    def of(cls, minor: int, currencies: Currencies) -> "Money":
        return cls(amount=currencies.format(minor), currency=currencies.base)


@strawberry.type
class ChannelCount:
    channel: Channel
    count: int


@strawberry.type
class EventCount:
    type: EventType
    count: int


@strawberry.type
class CategoryAffinity:
    category: str
    weight: int = strawberry.field(description="Views, cart adds and units bought in this category.")
    share: float = strawberry.field(description="This category's part of all the weight, 0 to 1.")


@strawberry.type(description="Orders that redeemed a coupon handed out on `issuedOn`, bought on `boughtOn`.")
class ChannelLink:
    issued_on: Channel
    bought_on: Channel
    orders: int


@strawberry.type(
    name="ProfileMetrics", description="Lifetime figures, or rolling windows of `days` UTC days."
)
class ProfileMetricsType:
    aggregates: strawberry.Private[Aggregates]

    @strawberry.field
    def orders(self, info: Info, days: int | None = None) -> int:
        return self._sum(info, days, lambda b: b.orders, self.aggregates.orders)

    @strawberry.field
    def gross_spend(self, info: Info, days: int | None = None) -> Money:
        minor = self._sum(info, days, lambda b: b.gross, self.aggregates.gross)
        return Money.of(minor, info.context.tracking.events.currencies)

    @strawberry.field(description="Gross spend less returns and cancellations.")
    def net_spend(self, info: Info, days: int | None = None) -> Money:
        minor = self._sum(info, days, lambda b: b.net, self.aggregates.net)
        return Money.of(minor, info.context.tracking.events.currencies)

    @strawberry.field
    def returned_amount(self, info: Info, days: int | None = None) -> Money:
        minor = self._sum(info, days, lambda b: b.returned, self.aggregates.returned)
        return Money.of(minor, info.context.tracking.events.currencies)

    @strawberry.field(description="How many events of this type.")
    def events(self, info: Info, type: EventType, days: int | None = None) -> int:
        lifetime = self.aggregates.counts.get(type.value, 0)
        return self._sum(info, days, lambda b: b.counts.get(type.value, 0), lifetime)

    @strawberry.field(description="Orders of the last `days` UTC days that redeemed an issued coupon.")
    def coupons_redeemed(self, info: Info, days: int) -> int:
        return self._sum(info, days, lambda b: b.coupons, 0)

    @strawberry.field(description="Coupons redeemed on another channel than they were handed out on.")
    def channel_links(self) -> list[ChannelLink]:
        links = [(link.split(">"), n) for link, n in sorted(self.aggregates.channel_links.items())]
        return [ChannelLink(issued_on=Channel(a), bought_on=Channel(b), orders=n) for (a, b), n in links]

    @strawberry.field(
        description=(
            "What the orders not cancelled are worth after their returns (net spend), per such order; "
            "null with none. As `ShopPeriod.averageOrderValueNet`."
        )
    )
    def average_order_value_net(self, info: Info) -> Money | None:
        return _money(self.aggregates.average_order_value(), info)

    @strawberry.field(description="Gross spend per order, cancelled ones included; null with no order.")
    def average_order_value_gross(self, info: Info) -> Money | None:
        return _money(self.aggregates.average_order_value_gross(), info)

    @strawberry.field(
        description="Net spend per order that was not cancelled.",
        deprecation_reason="Use averageOrderValueNet (the same figure); the name did not say gross or net.",
    )
    def average_order_value(self, info: Info) -> Money | None:
        return _money(self.aggregates.average_order_value(), info)

    @strawberry.field(description="Orders with a return, per order.")
    def return_rate(self) -> float:
        return self.aggregates.return_rate()

    @strawberry.field(description="Orders per checkout started; null before any checkout.")
    def conversion_rate(self) -> float | None:
        return self.aggregates.conversion_rate()

    @strawberry.field
    def first_seen(self) -> datetime | None:
        return self.aggregates.first_seen

    @strawberry.field
    def last_seen(self) -> datetime | None:
        return self.aggregates.last_seen

    @strawberry.field
    def last_order_at(self) -> datetime | None:
        return self.aggregates.last_order_at

    @strawberry.field
    def channels(self) -> list[ChannelCount]:
        return [
            ChannelCount(channel=Channel(c), count=n) for c, n in sorted(self.aggregates.channels.items())
        ]

    @strawberry.field
    def event_counts(self) -> list[EventCount]:
        return [EventCount(type=EventType(t), count=n) for t, n in sorted(self.aggregates.counts.items())]

    @strawberry.field(description="The customer's strongest categories first.")
    def category_affinities(self, first: int = 10) -> list[CategoryAffinity]:
        if not 1 <= first <= 100:
            raise bad_input(InvalidInput("first", "must be between 1 and 100"))
        total = sum(self.aggregates.categories.values()) or 1
        ranked = sorted(self.aggregates.categories.items(), key=lambda item: (-item[1], item[0]))[:first]
        return [CategoryAffinity(category=c, weight=w, share=round(w / total, 4)) for c, w in ranked]

    def _sum(self, info: Info, days: int | None, pick: Callable[[DayBucket], int], lifetime: int) -> int:
        if days is None:
            return lifetime
        limit = info.context.tracking.retention_days
        if not 1 <= days <= limit:
            raise bad_input(InvalidInput("days", f"must be between 1 and {limit}, the days kept per profile"))
        return sum(pick(bucket) for bucket in self.aggregates.window(info.context.now, days))


def _money(minor: int | None, info: Info) -> Money | None:
    return None if minor is None else Money.of(minor, info.context.tracking.events.currencies)

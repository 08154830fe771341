"""``shopMetrics``: the shop's conversion, order value, returns and customers, per period."""

import datetime
from typing import Annotated

import strawberry

from profilegate.api.context import Info
from profilegate.api.errors import bad_input
from profilegate.api.metrics import Money
from profilegate.api.permissions import MetricsReaders
from profilegate.domain.engaged_time import EngagedTime
from profilegate.domain.errors import InvalidInput
from profilegate.domain.events import Channel
from profilegate.domain.money import Currencies
from profilegate.domain.shop_breakdowns import MAX_ROWS, MAX_TOP_PRODUCTS, Breakdowns
from profilegate.domain.shop_metrics import Granularity, MetricsQuery, PeriodMetrics, ShopReport
from profilegate.service.shop_metrics import shop_metrics

strawberry.enum(Granularity, name="Granularity", description="How long each period of `shopMetrics` is.")


@strawberry.type(description="Engaged time on product pages in a period (docs/metrics.md).")
class EngagedSeconds:
    views: int = strawberry.field(description="Product views in the period.")
    measured: int = strawberry.field(
        description="Views with an engaged time: reported, or a next event within the session timeout."
    )
    median: float | None = strawberry.field(description="Median engaged seconds; null with none measured.")
    mean: float | None = strawberry.field(description="Mean engaged seconds; null with none measured.")

    @classmethod
    def of(cls, found: EngagedTime) -> "EngagedSeconds":
        return cls(views=found.views, measured=found.measured, median=found.median, mean=found.mean)


@strawberry.type(description="Visitors and last-touch orders of one traffic source (docs/metrics.md).")
class SourceBreakdown:
    source: str = strawberry.field(
        description='utm source or referrer host; "(direct)" for orders without a touch.'
    )
    medium: str = strawberry.field(description='utm medium, "referral", or "(none)".')
    visitors: int
    orders: int
    revenue: Money


@strawberry.type(description="Units sold and revenue of one product (sku) in a period.")
class ProductBreakdown:
    sku: str = strawberry.field(description="As the shop sent it (cut to 100 characters).")
    units: int
    revenue: Money = strawberry.field(
        description="The lines' price x quantity less their own discounts (no shipping or order discount)."
    )


@strawberry.type(description="Orders paid one way in a period.")
class PaymentMethodBreakdown:
    method: str | None = strawberry.field(description="The orders' paymentMethod; null when none was given.")
    orders: int
    revenue: Money


@strawberry.type(description="The shop's metrics over one period of shop days (docs/metrics.md).")
class ShopPeriod:
    from_: datetime.date = strawberry.field(name="from", description="The period's first shop day.")
    to: datetime.date = strawberry.field(description="The period's last shop day.")
    visitors: int = strawberry.field(description="Distinct profiles with any event, anonymous included.")
    buyers: int = strawberry.field(description="Distinct profiles with an order.")
    orders: int
    conversion_rate: float | None = strawberry.field(description="buyers / visitors; null with no visitor.")
    revenue: Money = strawberry.field(description="The orders' totals, gross of returns.")
    returned: Money = strawberry.field(description="The amounts of the returns in the period.")
    net_revenue: Money = strawberry.field(description="revenue - returned.")
    average_order_value_gross: Money | None = strawberry.field(
        description="revenue / orders: the orders' totals per order, cancelled ones included; null with none."
    )
    average_order_value_net: Money | None = strawberry.field(
        description=(
            "What the period's orders not cancelled are worth after their returns, per such order (returns "
            "and cancellations up to `to`, on any channel); null with none. As `ProfileMetrics`."
        )
    )
    average_order_value: Money | None = strawberry.field(
        description="revenue / orders.",
        deprecation_reason="Use averageOrderValueGross (the same figure); the name did not say gross or net.",
    )
    net_average_order_value: Money | None = strawberry.field(
        description="netRevenue / orders: the period's returns, of whatever orders, over all its orders.",
        deprecation_reason=(
            "Use averageOrderValueNet: the net the profile uses too (returns and cancellations of the "
            "period's orders, over the orders not cancelled)."
        ),
    )
    returns: int
    return_rate: float | None = strawberry.field(description="returns / orders, both in the period.")
    new_customers: int = strawberry.field(description="Buyers with no order before the period.")
    returning_customers: int = strawberry.field(description="Buyers with an order before the period.")
    repeat_purchase_rate: float | None = strawberry.field(description="returningCustomers / buyers.")
    churned_customers: int = strawberry.field(
        description="Customers whose last order lies the churn window before a day of the period."
    )
    customer_growth_rate: float | None = strawberry.field(
        description=(
            "(newCustomers - churnedCustomers) / customers with an order in the churn window before it."
        )
    )
    product_page_seconds: EngagedSeconds
    by_source: list[SourceBreakdown] = strawberry.field(
        description=f'Per traffic source, most orders first; at most {MAX_ROWS} (the rest as "(other)").'
    )
    payment_methods: list[PaymentMethodBreakdown] = strawberry.field(
        description=f'Per payment method, most orders first; at most {MAX_ROWS} (the rest as "(other)").'
    )
    _breakdowns: strawberry.Private[Breakdowns]
    _currencies: strawberry.Private[Currencies]

    @strawberry.field(
        description=f"Products by units sold, then revenue; `first` at most {MAX_TOP_PRODUCTS}."
    )
    def top_products(self, first: int = 10) -> list[ProductBreakdown]:
        if not 1 <= first <= MAX_TOP_PRODUCTS:
            raise bad_input(InvalidInput("first", f"must be between 1 and {MAX_TOP_PRODUCTS}"))
        return [
            ProductBreakdown(sku=p.sku, units=p.units, revenue=Money.of(p.revenue, self._currencies))
            for p in self._breakdowns.top_products(first)
        ]

    @classmethod
    def of(cls, found: PeriodMetrics, currencies: Currencies) -> "ShopPeriod":
        def money(minor: int | None) -> Money | None:
            return None if minor is None else Money.of(minor, currencies)

        return cls(
            from_=found.first,
            to=found.last,
            visitors=found.visitors,
            buyers=found.buyers,
            orders=found.orders,
            conversion_rate=found.conversion_rate,
            revenue=Money.of(found.revenue, currencies),
            returned=Money.of(found.returned, currencies),
            net_revenue=Money.of(found.revenue - found.returned, currencies),
            average_order_value_gross=money(found.average_order_value_gross),
            average_order_value_net=money(found.average_order_value_net),
            average_order_value=money(found.average_order_value_gross),
            net_average_order_value=money(found.net_average_order_value),
            returns=found.returns,
            return_rate=found.return_rate,
            new_customers=found.new_customers,
            returning_customers=found.returning_customers,
            repeat_purchase_rate=found.repeat_purchase_rate,
            churned_customers=found.churned_customers,
            customer_growth_rate=found.customer_growth_rate,
            product_page_seconds=EngagedSeconds.of(found.product_page),
            by_source=[
                SourceBreakdown(
                    source=row.source,
                    medium=row.medium,
                    visitors=row.visitors,
                    orders=row.orders,
                    revenue=Money.of(row.revenue, currencies),
                )
                for row in found.breakdowns.by_source
            ],
            payment_methods=[
                PaymentMethodBreakdown(
                    method=row.method, orders=row.orders, revenue=Money.of(row.revenue, currencies)
                )
                for row in found.breakdowns.payment_methods
            ],
            _breakdowns=found.breakdowns,
            _currencies=currencies,
        )


@strawberry.type
class ChannelPeriod:
    channel: Channel
    metrics: ShopPeriod


@strawberry.type(description="`total` and `byChannel` over the whole range, `periods` one by one.")
class ShopMetrics:
    total: ShopPeriod
    periods: list[ShopPeriod]
    by_channel: list[ChannelPeriod]

    @classmethod
    def of(cls, report: ShopReport, currencies: Currencies) -> "ShopMetrics":
        return cls(
            total=ShopPeriod.of(report.total, currencies),
            periods=[ShopPeriod.of(period, currencies) for period in report.periods],
            by_channel=[
                ChannelPeriod(channel=channel, metrics=ShopPeriod.of(found, currencies))
                for channel, found in report.by_channel.items()
            ],
        )


@strawberry.type
class ShopMetricQueries:
    @strawberry.field(
        permission_classes=[MetricsReaders],
        description=(
            "The shop's metrics from `from` to `to` (shop days, both included; at most 1,830); with "
            "`segment`, of that segment's current members only. Admins, and partner keys granted shopMetrics."
        ),
    )
    async def shop_metrics(
        self,
        info: Info,
        from_: Annotated[datetime.date, strawberry.argument(name="from")],
        to: datetime.date,
        granularity: Granularity = Granularity.DAY,
        channel: Channel | None = None,
        segment: Annotated[
            str | None, strawberry.argument(description="A segment's key: only its members count.")
        ] = None,
    ) -> ShopMetrics:
        rules = info.context.tracking
        try:
            query = MetricsQuery(
                from_, to, granularity, channel, rules.shop.churn_days, rules.shop.session_timeout
            )
            report = await shop_metrics(info.context.repos, query, segment)
        except InvalidInput as error:
            raise bad_input(error) from error
        return ShopMetrics.of(report, rules.events.currencies)

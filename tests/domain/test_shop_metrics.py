"""Shop metrics from day rollups: periods, rates, new, returning and churned customers."""

from datetime import date

import pytest

from profilegate.domain.errors import InvalidInput
from profilegate.domain.shop_days import DayRollup
from profilegate.domain.shop_metrics import (
    MAX_RANGE_DAYS,
    Granularity,
    MetricsQuery,
    PeriodMetrics,
    periods,
    shop_report,
)


def day(iso: str, visitors: str = "", buyers: str = "", orders: dict[str, int] | None = None) -> DayRollup:
    return DayRollup(date.fromisoformat(iso), None, set(visitors), set(buyers), orders or {})


def total(rollups: list[DayRollup], first: str, last: str, churn_days: int = 90) -> PeriodMetrics:
    query = MetricsQuery(date.fromisoformat(first), date.fromisoformat(last), churn_days=churn_days)
    return shop_report(rollups, query).total


@pytest.mark.parametrize(
    ("granularity", "first", "last", "expected"),
    [
        (Granularity.DAY, "2026-03-30", "2026-03-31", ["03-30..03-30", "03-31..03-31"]),
        (Granularity.WEEK, "2026-03-04", "2026-03-17", ["03-04..03-08", "03-09..03-15", "03-16..03-17"]),
        (Granularity.MONTH, "2026-01-15", "2026-03-02", ["01-15..01-31", "02-01..02-28", "03-01..03-02"]),
        (Granularity.MONTH, "2028-02-15", "2028-02-29", ["02-15..02-29"]),
    ],
)
def test_periods_are_days_iso_weeks_or_months_cut_at_the_range(
    granularity: Granularity, first: str, last: str, expected: list[str]
) -> None:
    query = MetricsQuery(date.fromisoformat(first), date.fromisoformat(last), granularity)

    assert [f"{a:%m-%d}..{b:%m-%d}" for a, b in periods(query)] == expected


def test_a_visitor_of_several_days_is_one_visitor_of_the_period() -> None:
    rollups = [day("2026-03-01", "ab"), day("2026-03-02", "bc", "b", {"o1": 5000})]

    found = total(rollups, "2026-03-01", "2026-03-02")

    assert (found.visitors, found.buyers, found.orders) == (3, 1, 1)
    assert found.conversion_rate == pytest.approx(1 / 3)


def test_order_values_round_half_to_even_to_the_minor_unit_as_the_profiles_do() -> None:
    found = total([day("2026-03-01", "a", "a", {"o1": 1000, "o2": 1001})], "2026-03-01", "2026-03-01")
    odd = total([day("2026-03-01", "a", "a", {"o1": 1001, "o2": 1002})], "2026-03-01", "2026-03-01")

    assert (found.average_order_value_gross, found.average_order_value_net) == (1000, 1000)  # 1000.5
    assert odd.average_order_value_gross == 1002  # 1001.5


def test_no_visitor_and_no_order_give_no_rates() -> None:
    found = total([], "2026-03-01", "2026-03-31")

    assert (found.conversion_rate, found.average_order_value_gross, found.return_rate) == (None, None, None)
    assert found.average_order_value_net is None
    assert (found.repeat_purchase_rate, found.customer_growth_rate) == (None, None)


def test_buyers_with_an_order_before_the_period_return_the_others_are_new() -> None:
    rollups = [day("2026-02-10", "a", "a"), day("2026-03-05", "ab", "ab")]

    found = total(rollups, "2026-03-01", "2026-03-31")

    assert (found.new_customers, found.returning_customers, found.repeat_purchase_rate) == (1, 1, 0.5)


def test_a_customer_churns_the_churn_window_after_the_last_order() -> None:
    # a's last order is on the 1st: churned on the 11st; b ordered again on the 8th: churns the 18th
    rollups = [day("2026-03-01", "ab", "ab"), day("2026-03-08", "b", "b")]

    assert total(rollups, "2026-03-11", "2026-03-11", churn_days=10).churned_customers == 1
    assert total(rollups, "2026-03-12", "2026-03-17", churn_days=10).churned_customers == 0
    assert total(rollups, "2026-03-11", "2026-03-31", churn_days=10).churned_customers == 2


def test_growth_is_new_less_churned_over_the_customers_active_at_the_start() -> None:
    rollups = [day("2026-03-01", "ab", "ab"), day("2026-03-15", "c", "c")]

    found = total(rollups, "2026-03-11", "2026-03-20", churn_days=10)

    assert (found.active_customers_at_start, found.new_customers, found.churned_customers) == (2, 1, 2)
    assert found.customer_growth_rate == -0.5


def test_a_range_is_refused_when_it_ends_before_it_starts_or_is_too_long() -> None:
    with pytest.raises(InvalidInput, match="to: 2026-02-28 lies before from"):
        MetricsQuery(date(2026, 3, 1), date(2026, 2, 28))
    with pytest.raises(InvalidInput, match=f"more than {MAX_RANGE_DAYS} days"):
        MetricsQuery(date(2020, 1, 1), date(2026, 1, 1))


def test_the_net_average_takes_each_orders_returns_and_cancellation_up_to_the_last_day() -> None:
    placed = day("2026-03-01", "abc", "abc", {"o1": 10000, "o2": 6000, "o3": 2000})
    later = DayRollup(
        date(2026, 3, 5),
        returns={"r1": 4000, "r2": 500},
        return_orders={"r1": "o1", "r2": "o2"},
        cancellations={"o2": "b"},  # partly returned, then cancelled: it leaves the average
    )
    too_late = DayRollup(date(2026, 4, 2), returns={"r3": 2000}, return_orders={"r3": "o3"})

    march = total([placed, later, too_late], "2026-03-01", "2026-03-31")
    first_day = total([placed, later, too_late], "2026-03-01", "2026-03-01")

    assert (march.average_order_value_gross, march.average_order_value_net) == (6000, 4000)  # (6000+2000)/2
    assert march.net_average_order_value == (18000 - 4500) // 3  # deprecated: returned in the period / orders
    assert first_day.average_order_value_net == 6000  # nothing returned or cancelled by then

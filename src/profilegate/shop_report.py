"""``profilegate report``: the shop metrics of a range as a table, or as CSV."""

import csv
from collections.abc import Callable
from typing import IO

from rich.table import Table

from profilegate.domain.money import Currencies
from profilegate.domain.shop_metrics import PeriodMetrics, ShopReport

PIPED_WIDTH = 280

type Column = tuple[str, Callable[[PeriodMetrics], str]]


def columns(currencies: Currencies) -> list[Column]:
    def money(minor: int | None) -> str:
        return "" if minor is None else currencies.format(minor)

    def rate(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    def seconds(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    return [
        ("from", lambda p: p.first.isoformat()),
        ("to", lambda p: p.last.isoformat()),
        ("visitors", lambda p: str(p.visitors)),
        ("buyers", lambda p: str(p.buyers)),
        ("orders", lambda p: str(p.orders)),
        ("conversion_rate", lambda p: rate(p.conversion_rate)),
        ("revenue", lambda p: money(p.revenue)),
        ("returned", lambda p: money(p.returned)),
        ("average_order_value_gross", lambda p: money(p.average_order_value_gross)),
        ("average_order_value_net", lambda p: money(p.average_order_value_net)),
        ("return_rate", lambda p: rate(p.return_rate)),
        ("new_customers", lambda p: str(p.new_customers)),
        ("returning_customers", lambda p: str(p.returning_customers)),
        ("repeat_purchase_rate", lambda p: rate(p.repeat_purchase_rate)),
        ("churned_customers", lambda p: str(p.churned_customers)),
        ("customer_growth_rate", lambda p: rate(p.customer_growth_rate)),
        ("product_page_seconds_median", lambda p: seconds(p.product_page.median)),
        ("product_page_seconds_mean", lambda p: seconds(p.product_page.mean)),
    ]


def rows(report: ShopReport, currencies: Currencies) -> list[list[str]]:
    """One row per period, then the total (its ``from`` and ``to`` are the range's)."""
    wanted = columns(currencies)
    return [[cell(period) for _, cell in wanted] for period in [*report.periods, report.total]]


def table(report: ShopReport, currencies: Currencies) -> Table:
    shown = Table(title=f"Shop metrics in {currencies.base}")
    for name, _ in columns(currencies):
        shown.add_column(name.replace("_", " "), justify="left" if name in ("from", "to") else "right")
    found = rows(report, currencies)
    for row in found[:-1]:
        shown.add_row(*row)
    shown.add_section()
    shown.add_row(*found[-1], style="bold")
    return shown


def write_csv(report: ShopReport, currencies: Currencies, out: IO[str]) -> None:
    writer = csv.writer(out)
    writer.writerow([name for name, _ in columns(currencies)])
    writer.writerows(rows(report, currencies))

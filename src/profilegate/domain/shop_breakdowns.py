"""Breakdowns of a period's orders: by traffic source, by product and by payment method.

- **By source**: a source's ``visitors`` are the distinct visitors with a touch from it in the
  period; an order counts for the source of its buyer's latest touch at or before the order in
  the period (last touch), or for ``(direct)`` / ``(none)`` without one.
- **Top products**: units and revenue per sku (as the shop sent it) over the period's orders, a
  line's revenue being its price x quantity less its own discount, without shipping
  (:mod:`profilegate.domain.shop_marks`); ordered by units, then revenue, then sku.
- **Payment methods**: orders and revenue per payment method (null: none given).

Each list holds at most ``MAX_ROWS`` entries; beyond it the smallest are summed in one entry
named ``(other)`` (its ``visitors`` is then a sum over sources, not a distinct count).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from profilegate.domain.shop_days import DayRollup
from profilegate.domain.shop_marks import NO_MEDIUM, OrderMark, Touch

MAX_ROWS = 100
MAX_TOP_PRODUCTS = 100
DIRECT = "(direct)"
OTHER = "(other)"


@dataclass
class SourceRow:
    source: str
    medium: str
    visitors: set[str] = field(default_factory=set)
    orders: int = 0
    revenue: int = 0


@dataclass(frozen=True)
class SourceSlice:
    source: str
    medium: str
    visitors: int
    orders: int
    revenue: int


@dataclass(frozen=True)
class ProductSlice:
    sku: str
    units: int
    revenue: int


@dataclass(frozen=True)
class PaymentSlice:
    method: str | None
    orders: int
    revenue: int


@dataclass(frozen=True)
class Breakdowns:
    by_source: tuple[SourceSlice, ...] = ()
    products: tuple[ProductSlice, ...] = ()  # all of them, ordered; topProducts takes the first
    payment_methods: tuple[PaymentSlice, ...] = ()

    def top_products(self, first: int) -> tuple[ProductSlice, ...]:
        return self.products[: max(0, min(first, MAX_TOP_PRODUCTS))]


def breakdowns(days: Sequence[DayRollup]) -> Breakdowns:
    orders = [
        (mark, days_total)
        for day in days
        for key, mark in day.order_marks.items()
        if (days_total := day.orders.get(key)) is not None
    ]
    touches = [t for day in days for t in day.touches.values()]
    return Breakdowns(_by_source(orders, touches), _products(m for m, _ in orders), _payments(orders))


def _by_source(orders: list[tuple[OrderMark, int]], touches: list[Touch]) -> tuple[SourceSlice, ...]:
    rows: dict[tuple[str, str], SourceRow] = {}
    by_visitor: dict[str, list[Touch]] = defaultdict(list)
    for t in touches:
        rows.setdefault((t.source, t.medium), SourceRow(t.source, t.medium)).visitors.add(t.visitor)
        by_visitor[t.visitor].append(t)
    for mark, total in orders:
        before = [t for t in by_visitor.get(mark.visitor, []) if t.at <= mark.at]
        last = max(before, key=lambda t: (t.at, t.source, t.medium), default=None)
        source = (DIRECT, NO_MEDIUM) if last is None else (last.source, last.medium)
        row = rows.setdefault(source, SourceRow(*source))
        row.orders += 1
        row.revenue += total
    ordered = sorted(
        rows.values(), key=lambda r: (-r.orders, -r.revenue, -len(r.visitors), r.source, r.medium)
    )
    slices = [SourceSlice(r.source, r.medium, len(r.visitors), r.orders, r.revenue) for r in ordered]
    if len(slices) > MAX_ROWS:
        rest = slices[MAX_ROWS - 1 :]
        other = SourceSlice(
            OTHER,
            OTHER,
            sum(s.visitors for s in rest),
            sum(s.orders for s in rest),
            sum(s.revenue for s in rest),
        )
        slices = [*slices[: MAX_ROWS - 1], other]
    return tuple(slices)


def _products(marks: Iterable[OrderMark]) -> tuple[ProductSlice, ...]:
    units: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    for mark in marks:
        for line in mark.lines:
            units[line.sku] += line.units
            revenue[line.sku] += line.revenue
    ordered = sorted(units, key=lambda sku: (-units[sku], -revenue[sku], sku))
    return tuple(ProductSlice(sku, units[sku], revenue[sku]) for sku in ordered)


def _payments(orders: list[tuple[OrderMark, int]]) -> tuple[PaymentSlice, ...]:
    counted: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for mark, total in orders:
        counted[mark.payment_method][0] += 1
        counted[mark.payment_method][1] += total
    ordered = sorted(counted.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0] or ""))
    slices = [PaymentSlice(method, n, amount) for method, (n, amount) in ordered]
    if len(slices) > MAX_ROWS:
        rest = slices[MAX_ROWS - 1 :]
        slices = [
            *slices[: MAX_ROWS - 1],
            PaymentSlice(OTHER, sum(s.orders for s in rest), sum(s.revenue for s in rest)),
        ]
    return tuple(slices)

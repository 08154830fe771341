"""What a shop day keeps of an order and of a traffic source touch, for the breakdowns.

- An **order mark**: the buyer's digest, the order's instant, its payment method and its lines,
  each line a product's units and its share of the order's total (after discount, with
  shipping) in proportion to the line's price x quantity, in minor units of the base currency.
- A **touch**: an event that says where the visitor came from: the ``utmSource`` and
  ``utmMedium`` properties (or ``utm_source`` / ``utm_medium``) of any event; else the host of a
  ``page_view``'s ``referrer``, with the medium ``referral``.
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from profilegate.domain.events import EventType, TrackedEvent

MAX_LABEL_LENGTH = 100  # longer sources, media, payment methods and skus are cut to this
REFERRAL = "referral"
NO_MEDIUM = "(none)"


@dataclass(frozen=True)
class OrderLine:
    sku: str
    units: int
    revenue: int


@dataclass(frozen=True)
class OrderMark:
    visitor: str
    at: int
    payment_method: str | None
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True)
class Touch:
    visitor: str
    at: int
    source: str
    medium: str


def label(value: object) -> str | None:
    """A non-empty string, lower-cased and cut to ``MAX_LABEL_LENGTH``; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower()[:MAX_LABEL_LENGTH]


def touch(event: TrackedEvent, visitor: str, at: int) -> Touch | None:
    properties = event.properties
    source = label(properties.get("utmSource", properties.get("utm_source")))
    if source is not None:
        medium = label(properties.get("utmMedium", properties.get("utm_medium")))
        return Touch(visitor, at, source, medium or NO_MEDIUM)
    if event.type is EventType.PAGE_VIEW and isinstance(referrer := properties.get("referrer"), str):
        host = label(urlsplit(referrer).hostname)
        if host is not None:
            return Touch(visitor, at, host, REFERRAL)
    return None


def order_mark(event: TrackedEvent, visitor: str, at: int) -> OrderMark:
    properties = event.properties
    return OrderMark(visitor, at, label(properties.get("paymentMethod")), _lines(properties, event.amount))


def _lines(properties: dict[str, Any], total: int) -> tuple[OrderLine, ...]:
    items = [
        (label(item.get("sku")) or "", int(item.get("quantity", 1)), _value(item))
        for item in properties.get("items", [])
    ]
    whole = sum(value for _, _, value in items)
    return tuple(
        OrderLine(sku, units, _rounded(Fraction(total) * value / whole) if whole else 0)
        for sku, units, value in items
    )


def _value(item: dict[str, Any]) -> Fraction:
    try:
        return Fraction(Decimal(str(item.get("price", 0)))) * int(item.get("quantity", 1))
    except (InvalidOperation, ValueError):
        return Fraction(0)


def _rounded(value: Fraction) -> int:
    return int(value + Fraction(1, 2))

"""What a shop day keeps of an order and of a traffic source touch, for the breakdowns.

- An **order mark**: the buyer's digest, the order's instant, its payment method and its lines,
  each line the product's sku as the shop sent it, its units and its revenue: price x quantity
  less the line's own ``discount`` if it carries one (no shipping, no order-wide discount), in
  minor units of the base currency, converted at the rate the order's total was (the order's
  base amount over its total: a rebuild converts as tracking did, whatever the rates are now).
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
    lines = order_lines(properties, event.amount)
    return OrderMark(visitor, at, label(properties.get("paymentMethod")), lines)


def order_lines(properties: dict[str, Any], amount: int) -> tuple[OrderLine, ...]:
    """The lines of an order whose total came to ``amount`` minor units of the base currency."""
    rate = _rate(properties.get("total"), amount)
    return tuple(
        OrderLine(str(item.get("sku", ""))[:MAX_LABEL_LENGTH], _units(item), _rounded(_value(item) * rate))
        for item in properties.get("items", [])
    )


def _rate(total: object, amount: int) -> Fraction:
    """Minor units of the base currency per unit of the order's currency, as its total was
    converted; none for an order of nothing (there is no rate to take from it)."""
    whole = _fraction(total)
    return Fraction(amount) / whole if whole > 0 else Fraction(0)


def _value(item: dict[str, Any]) -> Fraction:
    """Price x quantity less the line's discount, in the order's currency; never below 0."""
    lines = _fraction(item.get("price", 0)) * _units(item)
    return max(Fraction(0), lines - max(Fraction(0), _fraction(item.get("discount", 0))))


def _units(item: dict[str, Any]) -> int:
    try:
        return int(item.get("quantity", 1))
    except (TypeError, ValueError):
        return 0


def _fraction(value: object) -> Fraction:
    """A logged decimal amount exactly; 0 for anything that is none (the log holds validated
    events, but an older version's may differ)."""
    try:
        return Fraction(Decimal(str(value)))
    except (InvalidOperation, ValueError, OverflowError):
        return Fraction(0)


def _rounded(value: Fraction) -> int:
    """Half away from zero (values here are never negative), to whole minor units."""
    return int(value + Fraction(1, 2))

"""Money as integer minor units of the shop's base currency; decimals only at the edges."""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

from profilegate.domain.errors import InvalidInput

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "HUF": 2, "BHD": 3, "KWD": 3, "JOD": 3, "TND": 3}
MAX_AMOUNT = Decimal("1000000000")


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


@dataclass(frozen=True)
class Currencies:
    """The base currency and, optionally, rates for others (1 unit of X = rate units of base)."""

    base: str = "EUR"
    rates: dict[str, Decimal] = field(default_factory=dict)

    def to_minor(self, amount: str | int | float | Decimal, currency: str, field_path: str) -> int:
        """Parse a decimal amount in ``currency`` into minor units of the base currency."""
        value = parse_decimal(amount, field_path)
        if currency != self.base:
            rate = self.rates.get(currency)
            if rate is None:
                raise InvalidInput(
                    field_path.rsplit(".", 1)[0] + ".currency",
                    f"{currency} is not the base currency {self.base} and no rate is configured for it",
                )
            value *= rate
        return minor_units(value, self.base)

    def format(self, minor: int) -> str:
        places = exponent(self.base)
        return f"{Decimal(minor).scaleb(-places):.{places}f}"


def average(total: int, count: int) -> int | None:
    """``total / count`` in whole minor units, rounded half to even (as Python's ``round`` and
    MongoDB's ``$round`` do, so segments push it down alike); None when ``count`` is not above 0.
    Every average order value, the profile's and the shop's, gross and net, is this."""
    return None if count <= 0 else round(Fraction(total, count))


def parse_decimal(amount: str | int | float | Decimal, field_path: str) -> Decimal:
    try:
        value = Decimal(str(amount))
    except InvalidOperation as error:
        shown = str(amount) if len(str(amount)) <= 40 else f"{str(amount)[:37]}..."
        raise InvalidInput(field_path, f'"{shown}" is not a decimal amount; expected e.g. 99.50') from error
    # copy_abs, not abs(): abs() rounds to the context and overflows on an exponent like 1e999999999
    if not value.is_finite() or value.copy_abs() > MAX_AMOUNT:
        raise InvalidInput(field_path, "must be a finite amount below 1,000,000,000, e.g. 99.50")
    return value


def minor_units(value: Decimal, currency: str) -> int:
    quantum = Decimal(1).scaleb(-exponent(currency))
    return int(value.quantize(quantum, rounding=ROUND_HALF_EVEN).scaleb(exponent(currency)))

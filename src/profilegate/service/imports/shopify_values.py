"""Reading the values of Shopify export columns: dates, decimal amounts, yes/no, identities."""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from profilegate.service.imports.csv_files import Row

SHOPIFY_TIME = "%Y-%m-%d %H:%M:%S %z"  # e.g. 2026-03-01 10:15:32 +0100


class BadValue(Exception):
    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"{column}: {problem}")
        self.column = column


def moment(row: Row, column: str) -> str | None:
    """The column's time as ISO 8601 (None when empty); a time without a zone is refused."""
    text = row.get(column, "")
    if not text:
        return None
    try:
        parsed = datetime.strptime(text, SHOPIFY_TIME)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise BadValue(column, f"{text!r} is not a date like 2026-03-01 10:15:32 +0100") from None
    if parsed.tzinfo is None:
        raise BadValue(column, f"{text!r} has no time zone offset")
    return parsed.isoformat()


def amount(row: Row, column: str) -> Decimal:
    """The column's decimal amount (0 when empty); never a float, never negative."""
    text = row.get(column, "").replace(",", "")
    if not text:
        return Decimal(0)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadValue(column, f"{text!r} is not a decimal amount") from None
    if not value.is_finite():
        raise BadValue(column, f"{text!r} is not a decimal amount")
    if value < 0:
        raise BadValue(column, f"{text} is negative")
    return value


def quantity(row: Row, column: str) -> int:
    text = row.get(column, "")
    try:
        value = int(text)
    except ValueError:
        raise BadValue(column, f"{text!r} is not a whole number") from None
    if value <= 0:
        raise BadValue(column, f"{value} is not a positive quantity")
    return value


def yes(row: Row, column: str) -> bool | None:
    """Shopify's yes/no columns; None when the column is absent or empty."""
    text = row.get(column, "").lower()
    if not text:
        return None
    if text in ("yes", "true", "subscribed"):
        return True
    if text in ("no", "false", "not_subscribed", "unsubscribed"):
        return False
    raise BadValue(column, f"{text!r} is neither yes nor no")


def identity(row: Row, email_column: str = "Email", phone_column: str = "Phone") -> dict[str, Any]:
    """The tracking identity of a row: its e-mail, else its phone."""
    if row.get(email_column):
        return {"type": "EMAIL", "value": row[email_column]}
    if row.get(phone_column):
        return {"type": "PHONE", "value": row[phone_column]}
    raise BadValue(email_column, f"the row has neither an {email_column} nor a {phone_column}")

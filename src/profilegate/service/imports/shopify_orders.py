"""Shopify's order export: one row per line item, the order's own columns on its first row.

Each order becomes up to two events, with ids made from the order's ``Name`` so that a later,
overlapping export names the same events:

- ``order_completed`` (``shopify-orders:<Name>``) at ``Paid at`` (else ``Created at``), its line
  items (``Lineitem sku`` as written, else ``Lineitem name``; a ``Lineitem discount`` above 0 as
  the line's ``discount``), ``Shipping``, ``Discount Amount``, the ``Discount Code`` as its
  coupon, and ``Taxes`` charged on top of the prices counted with shipping (prices that include
  tax need nothing);
- ``order_cancelled`` (``…:cancel``) at ``Cancelled at``, or else, when ``Refunded Amount`` is
  above zero, ``order_returned`` (``…:refund``) for that amount. A cancellation already takes
  the whole order back, so its refund is not counted a second time.

Orders whose ``Financial Status`` says no money was taken (pending, authorized, voided,
expired) are rejected with that reason.
"""

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from profilegate.service.imports.csv_files import Row, UnreadableRow, check_header, csv_rows
from profilegate.service.imports.records import Events, Record, Rejected
from profilegate.service.imports.shopify_values import BadValue, amount, identity, moment, quantity

REQUIRED = (
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Currency",
    "Total",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
)
ID_PREFIX = "shopify-orders:"
PAID = frozenset({"paid", "partially_paid", "partially_refunded", "refunded"})
CHANNELS = {
    "web": "web",
    "pos": "store",
    "iphone": "app",
    "android": "app",
    "shopify_draft_order": "callcenter",
}
# The event fields a rejection by tracking names, and the columns they came from.
COLUMNS = (
    ("properties.total", "Total"),
    ("properties.currency", "Currency"),
    ("properties.amount", "Refunded Amount"),
    ("properties.items[].quantity", "Lineitem quantity"),
    ("properties.items[].sku", "Lineitem sku"),
    ("properties.items[].discount", "Lineitem discount"),
    ("properties.items", "Lineitem price"),
    ("properties.shipping", "Shipping"),
    ("properties.discount", "Discount Amount"),
    ("properties.couponCode", "Discount Code"),
    ("properties.orderId", "Name"),
    ("id", "Name"),
    ("identity", "Email"),
    ("at", "Paid at"),
)


def check_orders(path: Path) -> None:
    check_header(path, REQUIRED)


def read_orders(path: Path) -> Iterator[Record]:
    """One record per order, named by the line of its first row. A row that is not valid CSV is
    rejected, and so is the order read before it unless the row is known to start another order."""
    rows: list[Row] = []
    first_line = 0
    for read in csv_rows(path):
        if isinstance(read, UnreadableRow):
            name = read.known.get("Name")
            if rows:
                # The order read so far is whole only if the row is known to start another one.
                yield (
                    _order(rows, first_line)
                    if name and name != rows[0]["Name"]
                    else _cut_off(rows, first_line, read)
                )
                rows = []
            yield Rejected(read.line, f"order {name}: {read.reason}" if name else read.reason)
            continue
        line, row = read
        if rows and row.get("Name") != rows[0].get("Name"):
            yield _order(rows, first_line)
            rows = []
        if not rows:
            first_line = line
        rows.append(row)
    if rows:
        yield _order(rows, first_line)


def _order(rows: list[Row], line: int) -> Record:
    try:
        return Events(line, len(rows), tuple(_events(rows)), COLUMNS, f"order {rows[0]['Name']}")
    except BadValue as error:
        return Rejected(line, f"order {rows[0].get('Name') or '(no Name)'}: {error}", len(rows))


def _cut_off(rows: list[Row], line: int, unreadable: UnreadableRow) -> Rejected:
    name = rows[0].get("Name") or "(no Name)"
    reason = f"order {name}: not imported, since its next row (line {unreadable.line}) cannot be read"
    return Rejected(line, f"{reason} and may be one of its line items", len(rows))


def _events(rows: list[Row]) -> list[dict[str, Any]]:
    first = rows[0]
    name = first["Name"]
    if not name:
        raise BadValue("Name", "the order has no Name")
    status = first["Financial Status"].lower()
    if status not in PAID:
        raise BadValue("Financial Status", f"{status or 'empty'!r}: no money was taken, not an order")
    paid_at = moment(first, "Paid at") or moment(first, "Created at")
    if paid_at is None:
        raise BadValue("Paid at", "a paid order needs Paid at or Created at")
    envelope = {
        "identity": identity(first),
        "channel": CHANNELS.get(first.get("Source", "").lower(), "web"),
    }
    events = [
        {
            **envelope,
            "id": ID_PREFIX + name,
            "type": "order_completed",
            "at": paid_at,
            "properties": _order_properties(name, first, rows),
        }
    ]
    cancelled_at = moment(first, "Cancelled at")
    refunded = amount(first, "Refunded Amount")
    if cancelled_at is not None:
        events.append(
            {
                **envelope,
                "id": f"{ID_PREFIX}{name}:cancel",
                "type": "order_cancelled",
                "at": cancelled_at,
                "properties": {"orderId": name},
            }
        )
    elif refunded > 0:
        properties = {"orderId": name, "amount": str(refunded), "currency": first["Currency"]}
        events.append(
            {
                **envelope,
                "id": f"{ID_PREFIX}{name}:refund",
                "type": "order_returned",
                "at": paid_at,
                "properties": properties,
            }
        )
    return events


def _order_properties(name: str, first: Row, rows: list[Row]) -> dict[str, Any]:
    items = [_item(row) for row in rows]
    lines = sum((Decimal(item["price"]) * item["quantity"] for item in items), Decimal(0))
    total, discount = amount(first, "Total"), amount(first, "Discount Amount")
    shipping, taxes = amount(first, "Shipping"), amount(first, "Taxes")
    if taxes and abs(total - (lines + shipping + taxes - discount)) <= Decimal("0.01") * len(items):
        shipping += taxes  # taxes charged on top of the prices
    properties: dict[str, Any] = {
        "orderId": name,
        "total": str(total),
        "currency": first["Currency"],
        "items": items,
        "shipping": str(shipping),
        "discount": str(discount),
    }
    if first.get("Discount Code"):
        properties["couponCode"] = first["Discount Code"]
    return properties


def _item(row: Row) -> dict[str, Any]:
    sku = row.get("Lineitem sku") or row["Lineitem name"]
    if not sku:
        raise BadValue("Lineitem name", "a line item needs a Lineitem sku or a Lineitem name")
    item: dict[str, Any] = {
        "sku": sku,
        "price": str(amount(row, "Lineitem price")),
        "quantity": quantity(row, "Lineitem quantity"),
    }
    discount = amount(row, "Lineitem discount")
    if discount > 0:
        item["discount"] = str(discount)  # the line's part of the order's Discount Amount
    return item

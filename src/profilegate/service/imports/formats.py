"""The formats ``profilegate import`` reads, each a header check and a streaming reader."""

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from profilegate.service.imports.ndjson_reader import check_ndjson, read_ndjson
from profilegate.service.imports.records import Record
from profilegate.service.imports.shopify_customers import CustomerOptions, check_customers, read_customers
from profilegate.service.imports.shopify_orders import check_orders, read_orders


class ImportFormat(StrEnum):
    NDJSON = "ndjson"
    SHOPIFY_ORDERS = "shopify-orders-csv"
    SHOPIFY_CUSTOMERS = "shopify-customers-csv"


def check_format(path: Path, kind: ImportFormat) -> None:
    """Raise ``WrongFormat`` (naming what was expected) unless ``path`` looks like ``kind``."""
    match kind:
        case ImportFormat.NDJSON:
            check_ndjson(path)
        case ImportFormat.SHOPIFY_ORDERS:
            check_orders(path)
        case ImportFormat.SHOPIFY_CUSTOMERS:
            check_customers(path)


def read_records(path: Path, kind: ImportFormat, customers: CustomerOptions) -> Iterator[Record]:
    match kind:
        case ImportFormat.NDJSON:
            return read_ndjson(path)
        case ImportFormat.SHOPIFY_ORDERS:
            return read_orders(path)
        case ImportFormat.SHOPIFY_CUSTOMERS:
            return read_customers(path, customers)

"""A Shopify orders export with a customer of 300 orders, imported whole on the SQLite engine.

The importer groups a customer's orders into one batch, so the customer's profile update holds
300 day buckets: past the store's 63 paths of one update (docs/limits.md).
"""

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from profilegate.service.imports import ImportFormat, RejectedRow, import_files
from profilegate.service.profiles import ProfileRules
from profilegate.storage.store import Repositories
from tests.service.imports.files import SHOPIFY_FIXTURES, options
from tests.service.test_rebuild import profile_of
from tests.service.test_store_limits import sqlite_repos  # noqa: F401 (a fixture)
from tests.sqlite_store import sqlite_store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ORDERS = 300


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from sqlite_store(tmp_path_factory.mktemp("store"))


def shopify_orders(path: Path, email: str, count: int) -> Path:
    """An export in Shopify's column layout (the fixture's header): ``count`` orders of one
    line item each, one a day back from yesterday."""
    with (SHOPIFY_FIXTURES / "orders_export.csv").open(newline="") as fixture:
        template = next(csv.DictReader(fixture))
    with path.open("w", newline="") as export:
        writer = csv.DictWriter(export, fieldnames=list(template))
        writer.writeheader()
        for n in range(count):
            placed = (NOW - timedelta(days=n + 1)).strftime("%Y-%m-%d %H:%M:%S +0000")
            writer.writerow(
                template
                | {"Name": f"#{5000 + n}", "Email": email, "Created at": placed, "Paid at": placed}
                | {"Fulfilled at": placed, "Subtotal": "24.90", "Shipping": "4.95", "Total": "29.85"}
                | {"Taxes": "0.00", "Lineitem quantity": "1", "Lineitem price": "24.90", "Id": str(9000 + n)}
            )
    return path


async def test_a_customer_of_300_orders_is_imported_whole(
    sqlite_repos: Repositories,  # noqa: F811 (the fixture imported above)
    rules: ProfileRules,
    tmp_path: Path,
) -> None:
    export = shopify_orders(tmp_path / "orders_export.csv", "many@example.com", ORDERS)
    rejected: list[RejectedRow] = []
    await import_files(
        sqlite_repos, [export], options(rules, ImportFormat.SHOPIFY_ORDERS), NOW, on_rejected=rejected.append
    )

    assert rejected == []
    many = (await profile_of(sqlite_repos, "many@example.com")).aggregates
    assert many.orders == ORDERS

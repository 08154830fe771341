"""``POST /v1/track`` of a batch past the embedded store's limits on one update, on its SQLite
engine: 500 orders of one new customer on 500 distinct days are accepted whole (docs/limits.md)."""

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.gateway import ADMIN_KEY, GatewayClient
from tests.service.test_store_limits import orders_on_days
from tests.sqlite_store import sqlite_store

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
ORDERS = """
query { profile(ref: {identity: {type: EMAIL, value: "ann@example.com"}}) { metrics { orders } } }
"""


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from sqlite_store(tmp_path_factory.mktemp("store"))


async def test_500_orders_on_500_days_in_one_batch(gateway: GatewayClient, now: datetime) -> None:
    events = orders_on_days("ann@example.com", 500)

    response = await gateway.http.post("/v1/track", json={"events": events}, headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 500
    assert (await gateway.execute(ORDERS)).data["profile"]["metrics"]["orders"] == 500

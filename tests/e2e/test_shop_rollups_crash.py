"""The day rollups a ``serve`` held when it was killed (SIGKILL, nothing written) are recovered
from the event log by the ``serve`` started in its place: ``shopMetrics`` counts every event the
dead process acknowledged, once."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.server import ADMIN_KEY, StartServer

SILENT = {"PROFILEGATE_SHOP_ROLLUP_FLUSH_SECONDS": "0.5", "PROFILEGATE_SHOP_ROLLUP_SILENT_SECONDS": "2"}
HOLDING = {"PROFILEGATE_SHOP_ROLLUP_FLUSH_SECONDS": "60", "PROFILEGATE_SHOP_ROLLUP_SILENT_SECONDS": "600"}
METRICS = """
query($day: Date!) { shopMetrics(from: $day, to: $day) { total { visitors buyers orders } } }
"""
RECOVERY_WAIT_SECONDS = 60.0


def events(now: datetime) -> list[dict[str, object]]:
    def tracked(event_id: str, kind: str, who: str, **properties: object) -> dict[str, object]:
        at = (now - timedelta(minutes=1)).isoformat()
        return {
            "id": event_id,
            "type": kind,
            "at": at,
            "channel": "web",
            "anonymousId": who,
            "properties": properties,
        }

    items = [{"sku": "A1", "price": "50.00", "quantity": 1}]
    return [
        tracked("v1", "product_view", "ann", sku="A1"),
        tracked("v2", "page_view", "bob", url="/"),
        tracked("o1", "order_completed", "ann", orderId="o-1", total="50.00", currency="EUR", items=items),
    ]


def test_a_killed_gateways_rollups_are_recovered_by_the_next(
    start_server: StartServer, data_dir: Path
) -> None:
    first = start_server(data_dir, env=HOLDING)
    first.wait_ready()
    now = datetime.now(UTC)
    answer = httpx.post(
        f"{first.url}/v1/track",
        json={"events": events(now)},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30.0,
    ).json()
    assert answer["accepted"] == 3, answer
    first.kill()  # SIGKILL: the rollups it held (for up to 60 s) were never written

    second = start_server(data_dir, env=SILENT)
    second.wait_ready()
    day = now.date().isoformat()
    deadline, total = time.monotonic() + RECOVERY_WAIT_SECONDS, None
    while time.monotonic() < deadline:
        total = second.graphql(METRICS, {"day": day})["shopMetrics"]["total"]
        if total["visitors"]:
            break
        time.sleep(0.5)
    assert total == {"visitors": 2, "buyers": 1, "orders": 1}, second.logs()

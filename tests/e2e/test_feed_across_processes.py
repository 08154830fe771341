"""A change made through one gateway process reaches a subscriber on another within the poll bound."""

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.server import ADMIN_KEY, StartServer, StoreAddress
from tests.feed_client import FeedSocket

POLL_SECONDS = 0.5
# Delivery across processes: the poll interval, plus reading and sending on a shared machine.
BOUND_SECONDS = POLL_SECONDS + 1.5


def view(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "product_view",
        "at": "2026-11-20T09:00:00Z",
        "channel": "web",
        "identity": {"type": "EMAIL", "value": "ann@example.com"},
        "properties": {"sku": "A1", "category": "coats"},
    }


async def track(url: str, event_id: str) -> float:
    """Track one event through ``url``; the moment its acknowledgement arrived."""
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
        response = await http.post(
            "/v1/track", json={"events": [view(event_id)]}, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        )
    assert response.json()["accepted"] == 1, response.text
    return time.monotonic()


def test_a_change_through_one_process_reaches_a_subscriber_on_another(
    start_server: StartServer, data_dir: Path, tmp_path: Path
) -> None:
    writer = start_server(data_dir)
    writer.wait_ready()
    store = StoreAddress.read(data_dir)
    shared = {
        "MONGODB_URI": f"mongodb://{store.host}:{store.port}/",
        "PROFILEGATE_EMBEDDED_STORE_RUNNING": "true",
        "PROFILEGATE_FEED_POLL_SECONDS": str(POLL_SECONDS),
    }
    reader = start_server(tmp_path / "unused", env=shared)
    reader.wait_ready()

    async def follow() -> list[float]:
        delays = []
        async with FeedSocket.open(reader.url, key=ADMIN_KEY) as feed:
            await feed.subscribe({"kinds": ["EVENT_TRACKED"]})
            await asyncio.sleep(POLL_SECONDS * 2)
            for n in range(5):
                acknowledged = await track(writer.url, f"v{n}")
                change = await feed.change()
                delays.append(time.monotonic() - acknowledged)
                assert change["payload"]["eventId"] == f"v{n}"
        return delays

    delays = asyncio.run(follow())
    assert max(delays) < BOUND_SECONDS, delays
    assert not (tmp_path / "unused").exists(), "the second process started no store of its own"

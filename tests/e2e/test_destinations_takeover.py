"""A gateway process killed with SIGKILL in the middle of a delivery: a second process on the
same store takes the destination's lease over within seconds, sends the batch in flight again
under its id, and every change reaches the receiver, in order, none under two ids."""

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.destination_receiver import Receiver, receiving
from tests.e2e.server import ADMIN_KEY, Server, StartServer, StoreAddress

LEASE_SECONDS = 2.0
CREATE = """
mutation($input: DestinationInput!) {
  createDestination(input: $input) { __typename ... on DestinationCreated { secret } }
}
"""
CONSENT = """
mutation { setConsent(ref: {identity: {type: EMAIL, value: "ann@example.com"}},
  consent: {purpose: "ads", granted: true, source: "signup"}) { __typename } }
"""


def view(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "product_view",
        "at": "2026-11-20T09:00:00Z",
        "channel": "web",
        "identity": {"type": "EMAIL", "value": "ann@example.com"},
        "properties": {"sku": "A1", "category": "coats"},
    }


def track(server: Server, *event_ids: str) -> None:
    response = httpx.post(
        f"{server.url}/v1/track",
        json={"events": [view(event_id) for event_id in event_ids]},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10.0,
    )
    assert response.json()["accepted"] == len(event_ids), response.text


def wait_until(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("not within the time given")


def test_a_killed_deliverer_is_taken_over_and_nothing_is_lost(
    start_server: StartServer, data_dir: Path, tmp_path: Path
) -> None:
    # The store's own process tracks and delivers nothing, so killing a deliverer leaves the store up.
    writer = start_server(
        data_dir,
        env={"PROFILEGATE_DESTINATIONS_DELIVER": "false", "PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE": "true"},
    )
    writer.wait_ready()
    store = StoreAddress.read(data_dir)
    deliverer_env = {
        "MONGODB_URI": f"mongodb://{store.host}:{store.port}/",
        "PROFILEGATE_EMBEDDED_STORE_RUNNING": "true",
        "PROFILEGATE_FEED_POLL_SECONDS": "0.2",
        "PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE": "true",
        "PROFILEGATE_DESTINATIONS_LEASE_SECONDS": str(LEASE_SECONDS),
        "PROFILEGATE_DESTINATIONS_REFRESH_SECONDS": "0.2",
        "PROFILEGATE_DESTINATIONS_RETRY_FIRST_SECONDS": "0.2",
        "PROFILEGATE_DESTINATIONS_RETRY_MAX_SECONDS": "0.5",
    }
    receiver = Receiver(answers=["ok", "hang"], hang_seconds=4.0)
    with receiving(receiver):
        track(writer, "v0")
        writer.graphql(CONSENT)
        first = start_server(tmp_path / "first", env=deliverer_env)
        first.wait_ready()
        made = writer.graphql(
            CREATE,
            {
                "input": {
                    "id": "shop-backend",
                    "name": "Shop back end",
                    "url": receiver.url,
                    "send": {"kinds": ["EVENT_TRACKED"]},
                    "consentPurpose": "ads",
                    "maxBatch": 3,
                    "maxWaitSeconds": 0.1,
                }
            },
        )
        receiver.secrets.append(made["createDestination"]["secret"])
        track(writer, "v1")
        wait_until(lambda: len(receiver.delivered()) == 1, 10.0)
        second = start_server(tmp_path / "second", env=deliverer_env)
        second.wait_ready()
        track(writer, "v2", "v3", "v4")
        wait_until(lambda: len(receiver.received) == 2, 10.0)  # the batch in flight hangs
        os.kill(first.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        track(writer, "v5", "v6")
        track(writer, "v7")
        receiver.wait_for(7, timeout=30.0)
        resent = next(one for one in receiver.delivered() if one.batch_id == receiver.received[1].batch_id)
        track(writer, "v8")
        messages = receiver.wait_for(8, timeout=10.0)

    assert resent.at - killed_at < LEASE_SECONDS + 2.0, "taken over within seconds"
    assert resent.body == receiver.received[1].body, "the batch in flight was sent again as it was"
    assert [m["event"]["eventId"] for m in messages] == [f"v{n}" for n in range(1, 9)]
    ids_per_change: dict[str, set[str]] = {}
    for one in receiver.received:
        for message in one.messages:
            ids_per_change.setdefault(message["cursor"], set()).add(one.batch_id)
    assert all(len(ids) == 1 for ids in ids_per_change.values()), ids_per_change
    assert all(one.verified for one in receiver.received)
    assert second.process.poll() is None

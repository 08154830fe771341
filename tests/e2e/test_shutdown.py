"""``serve`` stops within a few seconds when its store is already gone, and keeps what it acknowledged.

Orchestrators send SIGTERM to the whole process group and kill what is left after a grace
period (30 s by default in Kubernetes); the gateway must not wait on a store that is gone.
"""

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.server import (
    ADMIN_KEY,
    HTTP_TIMEOUT_SECONDS,
    Server,
    StartServer,
    StoreAddress,
    accepts_connections,
)

# Well inside an orchestrator's 30 s grace period; the gateway takes about two seconds.
STOP_BOUND_SECONDS = 10.0
STORE_EXIT_SECONDS = 10.0
EVENTS = 3
EXPORT = """
query($ref: ProfileRef!) {
  exportProfile(ref: $ref) { __typename ... on ProfileExport { document } }
}
"""
REF = {"identity": {"type": "EMAIL", "value": "ann@example.com"}}


def view(n: int) -> dict[str, Any]:
    return {
        "id": f"view-{n}",
        "type": "product_view",
        "at": "2026-11-20T09:00:00Z",
        "channel": "web",
        "identity": REF["identity"],
        "properties": {"sku": f"A{n}", "category": "coats"},
    }


def track_views(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/track",
        json={"events": [view(n) for n in range(EVENTS)]},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == EVENTS, response.text


def logged_event_ids(server: Server) -> list[str]:
    exported = server.graphql(EXPORT, {"ref": REF})["exportProfile"]
    assert exported["__typename"] == "ProfileExport", exported
    return sorted(event["id"] for event in exported["document"]["events"])


def kill_store(data_dir: Path) -> None:
    """SIGKILL the embedded store; back once it no longer listens (it stays a zombie until
    ``serve`` reaps it)."""
    store = StoreAddress.read(data_dir)
    os.kill(store.pid, signal.SIGKILL)
    deadline = time.monotonic() + STORE_EXIT_SECONDS
    while accepts_connections(store.host, store.port):
        assert time.monotonic() < deadline, f"the store (pid {store.pid}) still listens"
        time.sleep(0.05)


def freeze_store(data_dir: Path) -> None:
    """SIGSTOP the embedded store: it keeps its connections open and answers nothing."""
    os.kill(StoreAddress.read(data_dir).pid, signal.SIGSTOP)


def seconds_to_stop(server: Server, *, whole_group: bool) -> float:
    """SIGTERM to ``serve`` (or to its whole process group); seconds until it exited with 0."""
    started = time.monotonic()
    if whole_group:
        os.killpg(server.process.pid, signal.SIGTERM)
    else:
        server.process.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0, server.logs()
    return time.monotonic() - started


def test_serve_stops_promptly_after_its_store_died_and_keeps_what_it_acknowledged(
    start_server: StartServer, data_dir: Path
) -> None:
    first = start_server(data_dir)
    first.wait_ready()
    track_views(first)
    kill_store(data_dir)
    time.sleep(1.0)  # the gateway's background work meets the dead store

    assert seconds_to_stop(first, whole_group=False) < STOP_BOUND_SECONDS, first.logs()

    second = start_server(data_dir)
    second.wait_ready()
    assert logged_event_ids(second) == [f"view-{n}" for n in range(EVENTS)]
    # The whole group at once, as an orchestrator does: the store may go first.
    assert seconds_to_stop(second, whole_group=True) < STOP_BOUND_SECONDS, second.logs()


def test_serve_stops_promptly_while_its_store_is_frozen_and_keeps_what_it_acknowledged(
    start_server: StartServer, data_dir: Path
) -> None:
    first = start_server(data_dir)
    first.wait_ready()
    track_views(first)
    frozen = StoreAddress.read(data_dir).pid
    freeze_store(data_dir)
    try:
        time.sleep(1.0)  # the gateway's background work waits on the frozen store

        assert seconds_to_stop(first, whole_group=False) < STOP_BOUND_SECONDS, first.logs()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(frozen, signal.SIGCONT)

    second = start_server(data_dir)
    second.wait_ready()
    assert logged_event_ids(second) == [f"view-{n}" for n in range(EVENTS)]

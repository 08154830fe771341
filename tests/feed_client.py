"""The gateway served by uvicorn on a free port in the test's loop, and a bare GraphQL
WebSocket client (both protocols) that does exactly what a test tells it, stalling included."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway import ADMIN_KEY, GatewayClient

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
RECEIVE_TIMEOUT_SECONDS = 10.0
CHANGES = """
subscription($after: String, $kinds: [ChangeKind!], $segment: String) {
  changes(after: $after, kinds: $kinds, segment: $segment) { cursor kind at profileId payload }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert isinstance(port, int)
    return port


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[tuple[str, GatewayClient]]:
    """The app behind a real socket: its base URL, and an HTTP GraphQL client for it."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
            yield base, GatewayClient(http)
    finally:
        server.should_exit = True
        await task


class FeedSocket:
    """One WebSocket connection speaking ``graphql-transport-ws`` or the legacy ``graphql-ws``."""

    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        base: str,
        *,
        key: str | None = ADMIN_KEY,
        protocol: str = TRANSPORT_WS,
        params: dict[str, Any] | None = None,
        max_queue: int | None = 16,
        acknowledge: bool = True,
    ) -> AsyncIterator["FeedSocket"]:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        async with connect(
            base.replace("http", "ws", 1) + "/graphql",
            subprotocols=[protocol],  # type: ignore[list-item]  # websockets types it as a NewType of str
            additional_headers=headers,
            max_queue=max_queue,
        ) as connection:
            feed = cls(connection, protocol)
            if acknowledge:
                await feed.send({"type": "connection_init", "payload": params or {}})
                ack = await feed.receive()
                assert ack["type"] == "connection_ack", ack
            yield feed

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), within))
            assert isinstance(message, dict)
            if message["type"] not in ("ka", "ping", "pong"):
                return message

    async def subscribe(self, variables: dict[str, Any] | None = None, *, id: str = "1") -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send({"id": id, "type": kind, "payload": {"query": CHANGES, "variables": variables or {}}})

    async def change(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The next change delivered; fails on anything else."""
        message = await self.receive(within)
        expected = "next" if self.protocol == TRANSPORT_WS else "data"
        assert message["type"] == expected, message
        assert "errors" not in message["payload"], message
        change = message["payload"]["data"]["changes"]
        assert isinstance(change, dict)
        return change

    async def changes(self, count: int, within: float = RECEIVE_TIMEOUT_SECONDS) -> list[dict[str, Any]]:
        return [await self.change(within) for _ in range(count)]

    async def nothing_within(self, seconds: float) -> bool:
        """True when no message arrives within ``seconds``."""
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"expected nothing, got {message}")

    async def closed(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> ConnectionClosed:
        """Read on until the server closes the connection; the close it sent."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.connection.recv()
        except ConnectionClosed as closed:
            return closed
        raise AssertionError("the connection stayed open")

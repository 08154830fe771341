"""The gateway served by uvicorn on a free port in the test's loop, and a bare GraphQL
WebSocket client (both protocols) that does exactly what a test tells it, stalling included."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from tests.gateway import ADMIN_KEY, GatewayClient

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
RECEIVE_TIMEOUT_SECONDS = 10.0
# No message confirms a subscription: give the server a moment to register it.
SUBSCRIBE_SETTLE_SECONDS = 0.2
CHANGES = """
subscription($after: String, $kinds: [ChangeKind!], $segment: String) {
  changes(after: $after, kinds: $kinds, segment: $segment) { cursor kind at profileId payload }
}
"""


@contextlib.asynccontextmanager
async def serving(
    app: Starlette, *, send_buffer: int | None = None
) -> AsyncIterator[tuple[str, GatewayClient]]:
    """The app behind a real socket: its base URL, and an HTTP GraphQL client for it.

    ``send_buffer``: a small kernel send buffer for the connections, so that a client that
    stops reading stalls the server's sends soon (the kernel otherwise buffers megabytes).
    """
    listener = socket.socket()
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
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
        listener.close()


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
        acknowledge: bool = True,
    ) -> AsyncIterator["FeedSocket"]:
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        async with connect(
            base.replace("http", "ws", 1) + "/graphql",
            subprotocols=[protocol],  # type: ignore[list-item]  # websockets types it as a NewType of str
            additional_headers=headers,
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
        await asyncio.sleep(SUBSCRIBE_SETTLE_SECONDS)

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


class StalledSocket:
    """A subscriber that stops reading once subscribed: a raw socket with a tiny receive buffer,
    speaking ``graphql-transport-ws`` through websockets' sans-I/O protocol."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, base: str, variables: dict[str, Any], *, key: str = ADMIN_KEY
    ) -> AsyncIterator["StalledSocket"]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        host, port = base.removeprefix("http://").split(":")
        uri = parse_uri(base.replace("http", "ws", 1) + "/graphql")
        stalled = cls(sock, ClientProtocol(uri, subprotocols=[Subprotocol(TRANSPORT_WS)]))
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
            request = stalled.protocol.connect()
            request.headers["authorization"] = f"Bearer {key}"
            stalled.protocol.send_request(request)
            await stalled._flush()
            await stalled._receive_until(lambda: stalled.protocol.state is not State.CONNECTING)
            assert stalled.protocol.state is State.OPEN, stalled.protocol.handshake_exc
            subscribe = {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": CHANGES, "variables": variables},
            }
            for message in ({"type": "connection_init", "payload": {}}, subscribe):
                stalled.protocol.send_text(json.dumps(message).encode())
            await stalled._flush()
            yield stalled
        finally:
            sock.close()

    async def close_frame(self, within: float = RECEIVE_TIMEOUT_SECONDS) -> Close:
        """Read on, everything the server sent, until its close frame."""
        async with asyncio.timeout(within):
            await self._receive_until(lambda: self.protocol.close_rcvd is not None)
        assert self.protocol.close_rcvd is not None, "the server ended the connection without a close frame"
        return self.protocol.close_rcvd

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def _receive_until(self, done: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        while not done():
            data = await loop.sock_recv(self.sock, 65536)
            if not data:
                self.protocol.receive_eof()
                return
            self.protocol.receive_data(data)
            self.protocol.events_received()
            await self._flush()

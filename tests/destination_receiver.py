"""A real webhook receiver on loopback for the destination tests.

It answers each request as told (``answers``, then ``default``): ``ok`` (200), ``fail`` (500),
``throttle`` (429 with ``Retry-After``), ``gone`` (410), ``hang`` (answers nothing for
``hang_seconds``), ``close`` (drops the connection unanswered) or ``redirect`` (302 elsewhere),
and verifies every request's signature with the Standard Webhooks reference library.
"""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    answered: str
    verified: bool

    @property
    def batch_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = json.loads(self.body)["messages"]
        assert isinstance(messages, list)
        return messages


@dataclass
class Receiver:
    port: int = 0
    secrets: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    default: str = "ok"
    retry_after: int = 1
    hang_seconds: float = 3.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self) -> str:
        with self.lock:
            return self.answers.pop(0) if self.answers else self.default

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            with contextlib.suppress(WebhookVerificationError):
                Webhook(secret).verify(body, headers)
                return True
        return False

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        with self.lock:
            return [one for one in self.received if one.answered == "ok"]

    def messages(self) -> list[dict[str, Any]]:
        return [message for one in self.delivered() for message in one.messages]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The delivered messages, once there are at least ``count`` (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages()
            if len(messages) >= count:
                return messages
            time.sleep(0.02)
        raise AssertionError(f"{len(self.messages())} messages arrived, not {count}: {self.received}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = receiver.answer()
            with receiver.lock:
                receiver.received.append(
                    Received(time.monotonic(), headers, body, answer, receiver.verify(body, headers))
                )
            match answer:
                case "ok":
                    self._answer(200)
                case "fail":
                    self._answer(500)
                case "gone":
                    self._answer(410)
                case "throttle":
                    self._answer(429, {"Retry-After": str(receiver.retry_after)})
                case "redirect":
                    self._answer(302, {"Location": receiver.url + "/elsewhere"})
                case "hang":
                    time.sleep(receiver.hang_seconds)
                    self._answer(200)
                case _:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)

        def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
            with contextlib.suppress(OSError):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def receiving(receiver: Receiver | None = None) -> Iterator[Receiver]:
    """A receiver listening on a free loopback port until the block ends."""
    receiver = receiver or Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()

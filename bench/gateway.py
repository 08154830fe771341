"""Server processes for the benchmarks that drive a real gateway over HTTP.

A :class:`Server` is one process in a process group of its own, on a free local port, logging
to a file; a :class:`Gateway` is ``python -m profilegate serve`` with its embedded store in a
data directory. Both are stopped with SIGTERM, as a process manager stops them, and their
group is killed if they do not exit.
"""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from profilegate.embedded import running_store_uri

READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 60.0

CREATE_KEY = """
mutation CreateKey($name: String!, $role: Role!) {
  createApiKey(name: $name, role: $role) {
    ... on ApiKeyCreated { token proofSecret key { id } }
    ... on InvalidInputError { message }
  }
}
"""


class BenchmarkError(RuntimeError):
    """The run cannot go on: a server did not start, or answered wrongly."""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A process serving HTTP on ``url``, in a process group of its own, logging to ``log``."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], log: Path, port: int
    ) -> None:
        self.name = name
        self.command = list(command)
        self.env = dict(env)
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path | None = None) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, path: str = "/readyz") -> None:
        """Until ``path`` answers 200; fails when the process exits or takes too long."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last = "no answer"
        with httpx.Client(base_url=self.url, timeout=5.0) as http:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise BenchmarkError(f"{self.name} exited during start-up\n{self.log_tail()}")
                try:
                    response = http.get(path)
                except httpx.TransportError as error:
                    last = repr(error)
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                time.sleep(0.25)
        raise BenchmarkError(f"{self.name} was not ready in {READY_TIMEOUT_SECONDS:.0f} s ({last})")

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; SIGKILL to its group if it does not exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            progress(f"{self.name} did not stop in {STOP_TIMEOUT_SECONDS:.0f} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_SECONDS)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def gateway_environment(admin_key: str, settings: Mapping[str, str]) -> dict[str, str]:
    """This environment without store or gateway settings (the embedded store, defaults),
    plus the admin key and ``settings`` (``PROFILEGATE_...`` variables)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("MONGODB_URI", "PROFILEGATE_MONGODB_URI") and not name.startswith("PROFILEGATE_")
    }
    env["PROFILEGATE_ADMIN_KEY"] = admin_key
    env.update(settings)
    return env


class Gateway(Server):
    """``profilegate serve`` with its embedded store, in a process group of its own."""

    def __init__(self, data_dir: Path, workers: int, settings: Mapping[str, str]) -> None:
        self.data_dir = data_dir
        self.admin_key = secrets.token_urlsafe(24)
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "profilegate",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        env = gateway_environment(self.admin_key, settings)
        super().__init__("the gateway", command, env, data_dir.parent / "serve.log", port)

    def store_uri(self) -> str:
        """The URI of the embedded store this gateway started."""
        uri = running_store_uri(self.data_dir)
        if uri is None:
            raise BenchmarkError("the gateway's embedded store is not running")
        return uri


@contextlib.contextmanager
def running_gateway(prefix: str, workers: int, settings: Mapping[str, str]) -> Iterator[Gateway]:
    """A ready gateway on a fresh data directory; stopped and its data removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        gateway = Gateway(Path(scratch) / "data", workers, settings)
        try:
            gateway.start()
            gateway.wait_ready()
            yield gateway
        finally:
            gateway.stop()


async def create_api_key(http: httpx.AsyncClient, admin_key: str, role: str, name: str) -> str:
    """A new key with ``role`` (the GraphQL enum value), created with the admin key."""
    return str((await _created_key(http, admin_key, role, name))["token"])


@dataclass(frozen=True)
class StorefrontKey:
    """A storefront key and what the shop's back end signs shopper proofs with."""

    token: str
    audience: str
    secret: str

    def proof(self, identity: Mapping[str, str], lifetime_seconds: int = 3600) -> str:
        """A shopper proof for ``identity`` (``{"type": "EMAIL", "value": ...}``), as a back end mints it."""
        now = int(time.time())
        sub = f"{_PROOF_TYPES[identity['type']]}:{identity['value']}"
        claims = {"sub": sub, "aud": self.audience, "iat": now, "exp": now + lifetime_seconds}
        return jwt.encode(claims, self.secret, algorithm="HS256")


_PROOF_TYPES = {
    "EMAIL": "email",
    "CUSTOMER_ID": "customerId",
    "PHONE": "phone",
    "LOYALTY_CARD": "loyaltyCard",
}


async def create_storefront_key(http: httpx.AsyncClient, admin_key: str, name: str) -> StorefrontKey:
    created = await _created_key(http, admin_key, "STOREFRONT", name)
    return StorefrontKey(token=created["token"], audience=created["key"]["id"], secret=created["proofSecret"])


async def _created_key(http: httpx.AsyncClient, admin_key: str, role: str, name: str) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": CREATE_KEY, "variables": {"name": name, "role": role}},
        headers={"authorization": f"Bearer {admin_key}"},
    )
    body = response.json()
    created = (body.get("data") or {}).get("createApiKey") or {}
    if response.status_code != 200 or not isinstance(created.get("token"), str):
        raise BenchmarkError(f"createApiKey failed: {response.status_code} {response.text[:500]}")
    return dict(created)


class SharingGateway(Gateway):
    """A second ``profilegate serve`` on ``first``'s embedded store, on a port of its own.

    ``MONGODB_URI`` names the store and ``PROFILEGATE_EMBEDDED_STORE_RUNNING`` says it is the
    embedded one, as ``serve`` tells its own workers: this process starts no store and lays out
    the database as the first gateway does. It takes the first gateway's admin key.
    """

    def __init__(self, first: Gateway, workers: int, settings: Mapping[str, str]) -> None:
        shared = {
            **settings,
            "MONGODB_URI": first.store_uri(),
            "PROFILEGATE_EMBEDDED_STORE_RUNNING": "true",
            "PROFILEGATE_ADMIN_KEY": first.admin_key,
        }
        super().__init__(first.data_dir, workers, shared)
        self.name = "the second gateway"
        self.log = first.data_dir.parent / "serve-second.log"
        self.admin_key = first.admin_key


@contextlib.contextmanager
def sharing_gateway(first: Gateway, workers: int, settings: Mapping[str, str]) -> Iterator[Gateway]:
    """A ready :class:`SharingGateway` on ``first``'s store; stopped afterwards (the store stays)."""
    second = SharingGateway(first, workers, settings)
    try:
        second.start()
        second.wait_ready()
        yield second
    finally:
        second.stop()

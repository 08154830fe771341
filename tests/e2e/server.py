"""``profilegate`` as a real process: CLI commands, and ``serve`` on a free port with its own store."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

PROFILEGATE = [sys.executable, "-m", "profilegate"]
ADMIN_KEY = "e2e-admin-key"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 120.0
HTTP_TIMEOUT_SECONDS = 10.0
ADDRESS_FILE = "store.json"


def environment(**extra: str) -> dict[str, str]:
    """This environment without any store or gateway settings, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "MONGODB_URI" and not name.startswith("PROFILEGATE_")
    }
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, timeout: float = CLI_TIMEOUT_SECONDS, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one ``profilegate`` command to completion, with ``env`` its only store or gateway
    settings; stdout and stderr are captured separately."""
    return subprocess.run(
        [*PROFILEGATE, *args],
        cwd=cwd,
        env=environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert isinstance(port, int)
    return port


def accepts_connections(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2.0):
        return True
    return False


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class StoreAddress:
    """Where a running embedded store listens, as its ``store.json`` says."""

    pid: int
    host: str
    port: int

    @classmethod
    def read(cls, data_dir: Path) -> "StoreAddress":
        recorded = json.loads((data_dir / ADDRESS_FILE).read_text())
        uri = urlsplit(recorded["uri"])
        assert uri.hostname is not None, recorded
        assert uri.port is not None, recorded
        return cls(pid=int(recorded["pid"]), host=uri.hostname, port=uri.port)


class Server:
    """One ``profilegate serve`` process (in a session of its own) and its logs."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        workers: int | None,
        logs: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        logs.mkdir(parents=True, exist_ok=True)
        self._stdout = logs / f"serve-{port}.out"
        self._stderr = logs / f"serve-{port}.err"
        command = [*PROFILEGATE, "serve", "--data-dir", str(data_dir), "--port", str(port)]
        if workers is not None:
            command += ["--workers", str(workers)]
        with self._stdout.open("wb") as stdout, self._stderr.open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                cwd=logs,
                env=environment(**{"PROFILEGATE_ADMIN_KEY": ADMIN_KEY, **(env or {})}),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )

    def logs(self) -> str:
        return f"--- stdout\n{self._stdout.read_text()}\n--- stderr\n{self._stderr.read_text()}"

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Poll ``/readyz`` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"serve exited with {self.process.returncode}\n{self.logs()}")
                try:
                    response = http.get("/readyz")
                except httpx.TransportError as error:
                    last = repr(error)
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                time.sleep(0.2)
        raise AssertionError(f"not ready within {timeout} s (last: {last})\n{self.logs()}")

    def graphql(
        self, document: str, variables: dict[str, Any] | None = None, *, key: str = ADMIN_KEY
    ) -> dict[str, Any]:
        """POST a GraphQL request; assert it succeeded and return its ``data``."""
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": document, "variables": variables or {}},
            headers={"authorization": f"Bearer {key}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data = body["data"]
        assert isinstance(data, dict)
        return data

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM to the ``serve`` process alone, as a process manager sends it; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """The exit code, once ``serve`` has ended by itself; killed and failed after ``timeout``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"serve did not exit within {timeout} s\n{self.logs()}") from None

    def kill(self) -> None:
        """SIGKILL whatever is left of the session: ``serve``, its workers and its store."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT_SECONDS)


class StartServer(Protocol):
    def __call__(
        self, data_dir: Path, *, workers: int | None = None, env: dict[str, str] | None = None
    ) -> Server: ...

"""End-to-end fixtures: ``profilegate serve`` as real processes, killed at teardown whatever happened."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, StartServer, free_port


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    started: list[Server] = []

    def start(data_dir: Path, *, workers: int | None = None, env: dict[str, str] | None = None) -> Server:
        server = Server(data_dir, port=free_port(), workers=workers, logs=tmp_path / "logs", env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()

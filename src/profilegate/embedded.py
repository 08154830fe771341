"""The embedded store: mongoeco's MongoDB wire server in a process of its own.

The gateway talks to it over the wire through the same ``AsyncMongoClient`` and URI code path
as to a real MongoDB. One store serves a data directory; a lock file keeps a second one out,
and ``store.json`` tells other local commands (``seed``, ``keys``) where the running one is.

The store serves until the process that started it closes the control pipe (``stop``) or goes
away (the pipe closes with it). A signal to the whole process group (Ctrl+C, or SIGTERM from
a process manager) leaves it serving while the gateway writes what it holds and closes its
client; a SIGTERM stops it at the latest ``SIGTERM_GRACE_SECONDS`` later.
"""

import asyncio
import contextlib
import fcntl
import gc
import inspect
import json
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

type Engine = Literal["sqlite", "memory"]

DATABASE_FILE = "profilegate.sqlite"
ADDRESS_FILE = "store.json"
LOCK_FILE = "store.lock"
START_TIMEOUT_SECONDS = 60.0
# A store that has not stopped this long after SIGTERM (frozen, or stuck) is killed, so that
# the gateway stops inside an orchestrator's grace period (30 s by default). Each write the
# store acknowledged is already committed to its file, so a kill loses none of them.
STOP_TIMEOUT_SECONDS = 3.0
# A SIGTERM that reached the store with its gateway (the whole process group) waits for the
# gateway to finish first; the gateway takes at most about 5 s (app.STOP_TIMEOUT_SECONDS twice
# and the client's close) even when its background work is stuck.
SIGTERM_GRACE_SECONDS = 10.0


class EmbeddedStoreError(RuntimeError):
    pass


class EmbeddedStore:
    """Starts and stops the store process; use as a context manager."""

    def __init__(self, *, data_dir: Path | None, engine: Engine = "sqlite", host: str = "127.0.0.1") -> None:
        if engine == "sqlite" and data_dir is None:
            raise EmbeddedStoreError("the sqlite engine needs a data directory")
        self.data_dir = data_dir
        self.engine: Engine = engine
        self.host = host
        self.uri: str | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._control: Connection | None = None

    def start(self) -> str:
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        control, self._control = context.Pipe(duplex=False)
        process = context.Process(
            target=_run_store,
            args=(sender, control, self.data_dir, self.engine, self.host, os.getpid()),
            name="profilegate-store",
            daemon=True,
        )
        process.start()
        sender.close()
        control.close()
        self._process = process
        if not receiver.poll(START_TIMEOUT_SECONDS):
            self.stop()
            raise EmbeddedStoreError("the embedded store did not start in time")
        message = receiver.recv()
        if message.get("error"):
            self.stop()
            raise EmbeddedStoreError(message["error"])
        self.uri = str(message["uri"])
        return self.uri

    def stop(self) -> None:
        """Close the control pipe, which stops the store; kill it if it has not stopped in time."""
        process, self._process = self._process, None
        control, self._control = self._control, None
        if control is not None:
            control.close()
        if process is None:
            return
        process.join(STOP_TIMEOUT_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def running_store_uri(data_dir: Path) -> str | None:
    """The URI of a store serving ``data_dir`` right now, if there is one."""
    address = data_dir / ADDRESS_FILE
    lock = data_dir / LOCK_FILE
    if not address.exists() or not lock.exists():
        return None
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return str(json.loads(address.read_text())["uri"])
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _run_store(
    sender: Connection, control: Connection, data_dir: Path | None, engine: Engine, host: str, parent: int
) -> None:
    lock_handle = None
    if data_dir is not None:
        lock_handle = (data_dir / LOCK_FILE).open("a")
        try:
            fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sender.send({"error": f"another store already serves {data_dir}"})
            return
    try:
        asyncio.run(_serve(sender, control, data_dir, engine, host, parent))
    except Exception as error:
        with contextlib.suppress(OSError):
            sender.send({"error": f"the embedded store failed: {error}"})
        raise
    finally:
        if data_dir is not None:
            (data_dir / ADDRESS_FILE).unlink(missing_ok=True)
        # Closed: the interpreter's last collection of the engine's heap would take a second or
        # more on a large one; frozen objects are left out of every later collection.
        gc.freeze()


async def _serve(
    sender: Connection, control: Connection, data_dir: Path | None, engine: Engine, host: str, parent: int
) -> None:
    from mongoeco.engines.memory import MemoryEngine
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

    _keep_codec_signature()
    storage: MemoryEngine | SQLiteEngine
    if data_dir is None or engine == "memory":
        storage = MemoryEngine(aggregation_materialization_limit=None)
    else:
        storage = SQLiteEngine(str(data_dir / DATABASE_FILE), aggregation_materialization_limit=None)
    server = AsyncMongoEcoProxyServer(engine=storage, host=host, port=0)
    address = await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Readable once the starting process closed its end or went away.
    loop.add_reader(control.fileno(), stopping.set)
    loop.add_signal_handler(signal.SIGTERM, loop.call_later, SIGTERM_GRACE_SECONDS, stopping.set)
    # Ctrl+C reaches the whole process group: the store outlives the gateway's own shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if data_dir is not None:
        (data_dir / ADDRESS_FILE).write_text(json.dumps({"uri": address.uri, "pid": os.getpid()}))
    sender.send({"uri": address.uri})
    sender.close()
    while not stopping.is_set():
        if os.getppid() != parent:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=1.0)
    loop.remove_reader(control.fileno())
    await server.close()


def _keep_codec_signature() -> None:
    """Work out once what the engine asks of its codec for every document it reads back.

    mongoeco's SQLite engine calls ``inspect.signature`` on ``DocumentCodec.decode`` for each
    stored document it decodes (mongoeco 4.11.0): a third or more of the cost of decoding an
    event, and creating a document decodes every document of its collection (DESIGN sec. 2),
    so an insert into a full segment of the event log pays it some 250 times. The signature
    does not change; ``__signature__`` is where ``inspect.signature`` looks first.
    """
    from mongoeco.core.codec import DocumentCodec

    decode = DocumentCodec.decode
    # typeshed gives a function no __signature__; inspect reads it (PEP 362).
    decode.__signature__ = inspect.signature(decode)  # type: ignore[attr-defined]

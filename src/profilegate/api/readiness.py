"""``GET /readyz``: whether this process can serve, with what it found.

Ready (200) when the store answers a ping within ``READY_TIMEOUT_SECONDS`` and this
process's change-feed follower is running; else 503. The answer reports both::

    {"status": "ready",
     "store": {"status": "ok", "latencyMs": 1.3},
     "feed": {"running": true, "position": 41, "head": 41, "lag": 0, "subscribers": 2}}
"""

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from profilegate.service.feed import FeedFollower
from profilegate.storage.documents import Database
from profilegate.storage.store import ping

READY_TIMEOUT_SECONDS = 2.0
ERROR_CHARS = 200


async def readyz(request: Request) -> JSONResponse:
    store = await _store(request.app.state.database)
    feed = await _feed(request.scope["state"]["follower"], store_answers=store["status"] == "ok")
    ready = store["status"] == "ok" and feed["running"]
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "store": store, "feed": feed},
        status_code=200 if ready else 503,
    )


async def _store(database: Database) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(database), READY_TIMEOUT_SECONDS)
    except Exception as error:
        return {"status": "unavailable", "error": (str(error) or type(error).__name__)[:ERROR_CHARS]}
    return {"status": "ok", "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


async def _feed(follower: FeedFollower, *, store_answers: bool) -> dict[str, Any]:
    head: int | None = None
    if store_answers:
        try:
            head = await asyncio.wait_for(follower.changes.head(), READY_TIMEOUT_SECONDS)
        except Exception:
            head = None
    return {
        "running": follower.running,
        "position": follower.position,
        "head": head,
        "lag": None if head is None else max(0, head - follower.position),
        "subscribers": follower.subscribers,
    }

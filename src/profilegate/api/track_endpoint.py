"""``POST /v1/track``: plain HTTPS tracking for shop back ends, JSON batches or NDJSON streams.

The same events and per-event outcomes as the ``track`` mutation. A malformed NDJSON line is
rejected on its own; the other lines are applied. A JSON batch over the tracking rules'
``max_batch`` is refused whole with 413 (an NDJSON stream is applied in chunks of that size).
"""

from typing import Any, cast

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import request_response

from profilegate.api import prometheus
from profilegate.api.http import PRINCIPAL, SHOPPER, GatewayState
from profilegate.api.rate_limits import client_address
from profilegate.api.storefront import event_screen
from profilegate.api.tracking import oversized_batch
from profilegate.service.tracking import EventOutcome, Status, track

NDJSON = "application/x-ndjson"


class _Malformed:
    def __init__(self, reason: str) -> None:
        self.reason = reason


async def _track(request: Request) -> Response:
    state = cast(GatewayState, request.scope["state"])
    body = await request.body()
    if NDJSON in request.headers.get("content-type", ""):
        items = _ndjson(body)
    else:
        try:
            items = _json_batch(orjson.loads(body))
        except orjson.JSONDecodeError as error:
            return _bad_request(f"the body is not valid JSON: {error}")
        except ValueError as error:
            return _bad_request(str(error))
    now = state["clock"]()
    rules = state["tracking"]
    if NDJSON not in request.headers.get("content-type", "") and len(items) > rules.max_batch:
        advice = f" (send at most {rules.max_batch} per request, or NDJSON)"
        refused = oversized_batch(len(items), rules.max_batch, advice)
        return JSONResponse({"errors": [refused.formatted]}, status_code=413)
    screen = event_screen(
        request.scope[PRINCIPAL],
        request.scope.get(SHOPPER),
        state["storefront"],
        client_address(request.scope),
    )
    chunk_size = rules.max_batch if NDJSON in request.headers.get("content-type", "") else len(items) or 1
    outcomes: list[EventOutcome] = []
    for start in range(0, len(items), chunk_size):
        chunk = items[start : start + chunk_size]
        events = [item for item in chunk if not isinstance(item, _Malformed)]
        feed = state["feed"]
        changed = state["segments"].follow(now, feed)
        tracked = iter(
            (
                await track(state["repos"], events, rules, now, changed=changed, observer=feed, screen=screen)
            ).results
        )
        outcomes.extend(
            EventOutcome(None, Status.REJECTED, item.reason)
            if isinstance(item, _Malformed)
            else next(tracked)
            for item in chunk
        )
    prometheus.count_outcomes(outcomes, via="http")
    return _answer(outcomes)


def _json_batch(document: Any) -> list[object]:
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        return list(document["events"])
    raise ValueError('the body must be a JSON object {"events": [...]}, or NDJSON with one event per line')


def _ndjson(body: bytes) -> list[object]:
    items: list[object] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            items.append(_Malformed(f"line {number}: not valid JSON: {error}"))
    return items


def _answer(outcomes: list[EventOutcome]) -> Response:
    def count(status: Status) -> int:
        return sum(1 for outcome in outcomes if outcome.status is status)

    return JSONResponse(
        {
            "accepted": count(Status.ACCEPTED),
            "duplicates": count(Status.DUPLICATE),
            "rejected": count(Status.REJECTED),
            "results": [{"id": o.id, "status": o.status.value, "reason": o.reason} for o in outcomes],
        }
    )


def _bad_request(message: str) -> Response:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}, status_code=400
    )


track_endpoint = request_response(_track)

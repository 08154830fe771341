"""``GET /v1/segments/{key}/audience``: a segment's consenting members as a streamed download.

Query parameters: ``purpose`` (the consent purpose the use needs, e.g. ``ads`` or
``email_marketing``; required), ``format`` (``csv``, the default, or ``ndjson``) and
``hash`` (``true``: SHA-256 of the normalised e-mail and phone, for ads platforms).
"""

from typing import cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import request_response

from profilegate.api.http import GatewayState
from profilegate.domain.errors import InvalidInput
from profilegate.service.audiences import AudienceRequest, ExportFormat, export_audience


async def _audience(request: Request) -> Response:
    state = cast(GatewayState, request.scope["state"])
    key = request.path_params["key"]
    try:
        audience = _request(request)
    except InvalidInput as error:
        return _error(400, "BAD_REQUEST", error.message, error.field)
    segments = await state["segments"].all()
    segment = next((s for s in segments if s.key == key), None)
    if segment is None:
        return _error(404, "NOT_FOUND", f"no segment {key!r}", "key")
    purposes = state["rules"].consent_purposes
    if audience.purpose not in purposes:
        return _error(400, "BAD_REQUEST", f"purpose: not one of {', '.join(purposes)}", "purpose")
    rows = export_audience(state["repos"], segment, segments, audience, purposes, state["clock"]())
    filename = f"{key}-{audience.purpose}.{audience.format.value}"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(rows, media_type=audience.format.media_type, headers=headers)


def _request(request: Request) -> AudienceRequest:
    params = request.query_params
    purpose = params.get("purpose")
    if not purpose:
        raise InvalidInput("purpose", "is required: the consent purpose of the use, e.g. ads")
    try:
        export_format = ExportFormat(params.get("format", "csv"))
    except ValueError as error:
        raise InvalidInput("format", "must be csv or ndjson") from error
    hashed = params.get("hash", "false")
    if hashed not in ("true", "false"):
        raise InvalidInput("hash", "must be true or false")
    return AudienceRequest(purpose=purpose, format=export_format, hashed=hashed == "true")


def _error(status: int, code: str, message: str, field: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code, "field": field}}]}
    return JSONResponse(body, status_code=status)


audience_endpoint = request_response(_audience)

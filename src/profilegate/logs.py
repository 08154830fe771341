"""Logging: one line per record, JSON or text, with the id of the request being handled.

The request id comes from asgi-correlation-id's context variable (set by
``api.request_ids.RequestIds`` for each HTTP request and WebSocket connection); a record
written outside a request has none. ``serve`` hands this configuration to uvicorn, so its own
loggers (``uvicorn.error``, ``uvicorn.access``) write the same lines.

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``request_id``, any ``extra`` fields (e.g. ``error_id`` of a masked internal error) and, for
an exception, ``exc_info`` with the traceback.
"""

from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "warning", "error"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
JSON_FIELDS = ["levelname", "name", "message", "correlation_id"]
JSON_RENAMES = {"levelname": "level", "name": "logger", "correlation_id": "request_id"}
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def formatter_config(log_format: LogFormat) -> dict[str, Any]:
    if log_format == "json":
        return {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": JSON_RENAMES,
            "timestamp": "time",
            # uvicorn adds an ANSI-coloured copy of some messages; the plain one is enough.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
    return {"format": TEXT_FORMAT}


def log_config(log_format: LogFormat, level: LogLevel = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document (also uvicorn's ``log_config``): everything,
    uvicorn's loggers included, goes through one handler on standard error."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {
                "()": "asgi_correlation_id.CorrelationIdFilter",
                "default_value": None if log_format == "json" else "-",
            }
        },
        "formatters": {"line": formatter_config(log_format)},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()} for name in UVICORN_LOGGERS
        },
    }

"""Limits on free-form JSON a caller sends (event properties, traits), checked before any write.

MongoDB refuses documents nested deeper than 100 levels or larger than 16 MiB, and field
names with a NUL character; names that start with ``$`` or contain ``.`` are stored since
MongoDB 5.0 but cannot be reached by update operators or query paths
(https://www.mongodb.com/docs/manual/reference/limits/,
https://www.mongodb.com/docs/manual/core/dot-dollar-considerations/). Our limits sit far
below MongoDB's, so a value that passes them always fits, and a value that breaks one is
refused with the path of the offending part and the limit it broke.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from profilegate.domain.errors import InvalidInput

# MongoDB's own ceilings, which no configured limit may reach (see the module docstring).
MONGODB_MAX_DEPTH = 100
MONGODB_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class FreeFormLimits:
    """``max_depth`` counts the outermost object as the first level; ``max_keys`` counts the
    keys of every level together; ``max_bytes`` is the size of the value encoded as JSON."""

    max_bytes: int
    max_keys: int
    max_depth: int
    max_key_length: int
    max_string_length: int | None = None


def check_free_form(value: Mapping[str, object], limits: FreeFormLimits, field: str) -> None:
    """Raise :class:`InvalidInput` naming the path and the limit of the first part over a limit."""
    _Walker(limits).walk(value, field, depth=1)
    size = len(orjson.dumps(value))  # after the walk: orjson itself stops at 255 levels
    if size > limits.max_bytes:
        raise InvalidInput(field, f"take {size} bytes as JSON, more than the limit of {limits.max_bytes}")


class _Walker:
    def __init__(self, limits: FreeFormLimits) -> None:
        self.limits = limits
        self.keys = 0

    def walk(self, value: object, path: str, depth: int) -> None:
        if isinstance(value, Mapping | list) and depth > self.limits.max_depth:
            raise InvalidInput(path, f"nests deeper than the limit of {self.limits.max_depth} levels")
        if isinstance(value, Mapping):
            self._object(value, path, depth)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, f"{path}[{index}]", depth + 1)
        else:
            self._scalar(value, path)

    def _scalar(self, value: object, path: str) -> None:
        if isinstance(value, str):
            self._check_string(value, path)
        elif isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise InvalidInput(path, "is an integer outside the 64-bit range")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(path, "is not a finite number")
        elif not isinstance(value, int | float | bool) and value is not None:
            raise InvalidInput(path, f"holds a {type(value).__name__}, which is not JSON")

    def _check_string(self, value: str, path: str) -> None:
        limit = self.limits.max_string_length
        if limit is not None and len(value) > limit:
            raise InvalidInput(path, f"is {len(value)} characters long, more than the limit of {limit}")

    def _object(self, value: Mapping[object, object], path: str, depth: int) -> None:
        for key, item in value.items():
            self._check_key(key, path)
            self.keys += 1
            if self.keys > self.limits.max_keys:
                raise InvalidInput(path, f"more than the limit of {self.limits.max_keys} keys in all")
            self.walk(item, f"{path}.{key}", depth + 1)

    def _check_key(self, key: object, path: str) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidInput(path, "keys must be non-empty strings")
        if len(key) > self.limits.max_key_length:
            raise InvalidInput(
                f"{path}.{key[:20]}", f"key longer than the limit of {self.limits.max_key_length} characters"
            )
        if key.startswith("$") or "." in key or "\x00" in key:
            shown = key.replace("\x00", "\\u0000")
            raise InvalidInput(f"{path}.{shown}", "keys may not start with '$' or contain '.' or NUL")

"""Free-form profile traits: JSON merge patch (RFC 7386) and explicit size limits."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from profilegate.domain.errors import InvalidInput

type JSON = dict[str, Any]


@dataclass(frozen=True)
class TraitLimits:
    max_bytes: int = 16_384
    max_keys: int = 256
    max_depth: int = 5
    max_key_length: int = 64


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> JSON:
    """Apply an RFC 7386 merge patch: objects merge, ``None`` removes a key, the rest replaces."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            current = merged.get(key)
            base = current if isinstance(current, Mapping) else {}
            merged[key] = merge_patch(base, value)
        else:
            merged[key] = value
    return merged


def validate_traits(traits: Mapping[str, Any], limits: TraitLimits, *, field: str = "traits") -> None:
    """Reject traits over the limits or with keys MongoDB cannot store; names the offending path."""
    counter = _KeyCounter(limits)
    counter.walk(traits, field, depth=1)
    size = len(orjson.dumps(traits))
    if size > limits.max_bytes:
        raise InvalidInput(field, f"take {size} bytes as JSON, more than the limit of {limits.max_bytes}")


class _KeyCounter:
    def __init__(self, limits: TraitLimits) -> None:
        self.limits = limits
        self.keys = 0

    def walk(self, value: object, path: str, depth: int) -> None:
        if isinstance(value, Mapping | list) and depth > self.limits.max_depth:
            raise InvalidInput(path, f"nests deeper than the limit of {self.limits.max_depth}")
        if isinstance(value, Mapping):
            self._object(value, path, depth)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, f"{path}[{index}]", depth + 1)
        elif isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise InvalidInput(path, "is an integer outside the 64-bit range")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(path, "is not a finite number")
        elif not isinstance(value, str | int | float | bool) and value is not None:
            raise InvalidInput(path, f"holds a {type(value).__name__}, which is not JSON")

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
                f"{path}.{key[:20]}", f"key longer than {self.limits.max_key_length} characters"
            )
        if key.startswith("$") or "." in key or "\x00" in key:
            raise InvalidInput(f"{path}.{key}", "keys may not start with '$' or contain '.'")

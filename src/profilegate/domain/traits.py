"""Free-form profile traits: JSON merge patch (RFC 7386) and explicit size limits."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from profilegate.domain.free_form import FreeFormLimits, check_free_form

type JSON = dict[str, Any]


@dataclass(frozen=True)
class TraitLimits:
    max_bytes: int = 16_384
    max_keys: int = 256
    max_depth: int = 5
    max_key_length: int = 64

    @property
    def free_form(self) -> FreeFormLimits:
        return FreeFormLimits(self.max_bytes, self.max_keys, self.max_depth, self.max_key_length)


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
    check_free_form(traits, limits.free_form, field)

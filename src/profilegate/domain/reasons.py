"""The reason an admin or partner gives for a change (an extension, a merge, an erasure)."""

from profilegate.domain.errors import InvalidInput

MAX_REASON_LENGTH = 500


def check_reason(reason: str, field: str = "reason") -> str:
    """Required and bounded; returned without surrounding white space."""
    stripped = reason.strip()
    if not stripped:
        raise InvalidInput(field, "must not be empty")
    if len(stripped) > MAX_REASON_LENGTH:
        raise InvalidInput(field, f"is longer than {MAX_REASON_LENGTH} characters")
    return stripped

"""What a value should look like, in the product's words, for each way pydantic refuses one.

pydantic's own messages ("String should match pattern '^[A-Z]...'", "Value error, ...") speak
of its types; a client is told the form we expect and the limit it broke instead. A regular
expression a field must match is named by ``form(pattern, words)`` where it is declared.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic_core import ErrorDetails

_FORMS: dict[str, str] = {}
# The short names pydantic puts into an error's location for the member of a union (or a
# wrapped validator) that was tried: never part of the path a client wrote.
_UNION_MEMBERS = frozenset(
    {"bool", "int", "float", "str", "decimal", "none", "list", "dict", "tuple", "date", "datetime", "json"}
)
# For a union: what each member would have taken, as a noun phrase.
_NOUNS = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a decimal number",
    "decimal_parsing": "a decimal number",
    "string_type": "a text",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
    "datetime_type": "a date and time in ISO 8601 such as 2026-11-20T10:00:00Z",
    "datetime_parsing": "a date and time in ISO 8601 such as 2026-11-20T10:00:00Z",
    "datetime_from_date_parsing": "a date and time in ISO 8601 such as 2026-11-20T10:00:00Z",
    "date_type": "a date in ISO 8601 such as 2026-11-20",
    "date_parsing": "a date in ISO 8601 such as 2026-11-20",
}


def form(pattern: str, words: str) -> str:
    """Declare a regular expression a value must match together with the words that describe
    it (``"upper-case letters, digits and '_', starting with a letter"``); returns the pattern."""
    _FORMS[pattern] = words
    return pattern


def client_location(location: Sequence[int | str]) -> tuple[int | str, ...]:
    """The location without the union members pydantic tried (``value.bool`` -> ``value``)."""
    return tuple(part for part in location if not _is_member(part))


def reason(problems: Sequence[ErrorDetails]) -> str:
    """What is wrong with the first value refused, in our words; a union's members together."""
    first = problems[0]
    if tuple(first["loc"]) == client_location(first["loc"]):
        return _reason(first)
    spot = client_location(first["loc"])
    nouns = [_NOUNS.get(p["type"]) for p in problems if client_location(p["loc"]) == spot]
    named = list(dict.fromkeys(noun for noun in nouns if noun is not None))
    if len(named) < len(nouns):  # a member refused the value for more than its type: say why
        return _reason(next(p for p in problems if _NOUNS.get(p["type"]) is None))
    return f"must be {_either(named)}"


def _reason(problem: ErrorDetails) -> str:
    kind = problem["type"]
    limits: Mapping[str, Any] = problem.get("ctx") or {}
    if kind in {"value_error", "assertion_error"}:
        return str(limits.get("error", "is not valid here"))
    if kind in _NOUNS:
        return f"must be {_NOUNS[kind]}"
    return _REASONS.get(kind, _unlisted)(limits)


def _unlisted(_: Mapping[str, Any]) -> str:
    return "is not a value this field takes"


def _pattern(limits: Mapping[str, Any]) -> str:
    words = _FORMS.get(str(limits.get("pattern")))
    return f"must be {words}" if words else "is not in the form this field takes"


def _entries(count: object) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _characters(count: object) -> str:
    return f"{count} character" if count == 1 else f"{count} characters"


def _either(nouns: Sequence[str]) -> str:
    return nouns[0] if len(nouns) == 1 else f"{', '.join(nouns[:-1])} or {nouns[-1]}"


_REASONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda _: "is required",
    "extra_forbidden": lambda _: "is not a field of this input",
    "string_too_short": lambda c: (
        "must not be empty"
        if c.get("min_length") == 1
        else f"needs at least {_characters(c.get('min_length'))}"
    ),
    "string_too_long": lambda c: f"is longer than {_characters(c.get('max_length'))}",
    "string_pattern_mismatch": _pattern,
    "too_short": lambda c: f"needs at least {_entries(c.get('min_length'))}",
    "too_long": lambda c: f"holds more than the limit of {_entries(c.get('max_length'))}",
    "greater_than": lambda c: f"must be more than {c.get('gt')}",
    "greater_than_equal": lambda c: f"must be at least {c.get('ge')}",
    "less_than": lambda c: f"must be less than {c.get('lt')}",
    "less_than_equal": lambda c: f"must be at most {c.get('le')}",
    "finite_number": lambda _: "must be a finite number",
    "decimal_max_digits": lambda c: f"has more than the limit of {c.get('max_digits')} digits",
    "decimal_max_places": lambda c: f"has more than the limit of {c.get('decimal_places')} decimal places",
    "decimal_whole_digits": lambda c: (
        f"has more than the limit of {c.get('whole_digits')} digits before the point"
    ),
    "literal_error": lambda c: f"must be {c.get('expected')}",
    "enum": lambda c: f"must be {c.get('expected')}",
    "union_tag_invalid": lambda c: f"must be {c.get('expected_tags')}",
    "union_tag_not_found": lambda c: f"needs {c.get('discriminator')}",
    "timezone_aware": lambda _: "needs a time zone, e.g. 2026-11-20T10:00:00Z",
}


def _is_member(part: int | str) -> bool:
    return isinstance(part, str) and (
        part in _UNION_MEMBERS or "[" in part or part.startswith("constrained-")
    )

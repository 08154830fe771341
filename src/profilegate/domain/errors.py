"""Expected failures. The API turns each into a typed GraphQL result."""

from dataclasses import dataclass
from typing import Self

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from profilegate.domain import expected_forms


class DomainError(Exception):
    """An expected failure a client can act on."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A value the caller sent breaks a rule; ``field`` is the path of the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message

    def under(self, prefix: str) -> Self:
        """The same problem with its path below ``prefix`` (the argument holding the value)."""
        moved = type(self).__new__(type(self))  # no __init__: subclasses take other arguments
        moved.__dict__.update(self.__dict__)
        moved.field = f"{prefix}.{self.field}"
        moved.message = f"{moved.field}: {self.reason}"
        moved.args = (moved.message,)
        return moved


def invalid_input(error: ValidationError, prefix: str, whole: str = "input") -> InvalidInput:
    """The first problem pydantic found, with its path in the API's camelCase (``items[0].price``)
    below ``prefix`` (the path of the value validated) and the expected form in our words."""
    problems = error.errors()
    location = expected_forms.client_location(problems[0]["loc"])
    path = ".".join(_segment(part) for part in location).replace(".[", "[")
    field = ".".join(p for p in (prefix, path) if p) or whole
    return InvalidInput(field, expected_forms.reason(problems))


def _segment(part: int | str) -> str:
    return f"[{part}]" if isinstance(part, int) else to_camel(part) if "_" in part else part


@dataclass(frozen=True)
class ConflictingIdentity:
    key: str
    profile_id: str


class IdentityConflict(DomainError):
    """An identity already names another profile."""

    def __init__(self, conflict: ConflictingIdentity) -> None:
        super().__init__(f"identity {conflict.key} already belongs to another profile")
        self.conflict = conflict


class ProfileNotFound(DomainError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"no profile for {ref}")
        self.ref = ref


class UnknownExtension(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"extension {name!r} is not defined")
        self.name = name


class NotPermitted(DomainError):
    """The caller's role may not do this to this object (e.g. a partner and a private extension)."""


class TierPolicyNotFound(DomainError):
    def __init__(self, version: int) -> None:
        super().__init__(f"no tier policy has version {version}")
        self.version = version


class TierPolicyUnchanged(DomainError):
    """The policy given is the same as a published version: publishing it would add nothing."""

    def __init__(self, version: int, active: bool) -> None:
        which = "the active policy" if active else "the latest policy"
        hint = "" if active else f"; activate version {version} instead"
        super().__init__(f"the policy is unchanged: it is the same as version {version}, {which}{hint}")
        self.version = version

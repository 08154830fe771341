"""Field-level permissions: each root field and sensitive field names the roles it admits."""

from typing import Any

from strawberry.permission import BasePermission

from profilegate.api.context import Info
from profilegate.domain.keys import Role

ALL_ROLES = frozenset(Role)


def allow(*roles: Role) -> type[BasePermission]:
    """A permission class admitting exactly ``roles``."""
    admitted = frozenset(roles)
    names = ", ".join(sorted(role.value for role in admitted))

    class Allowed(BasePermission):
        message = f"this field needs one of the roles: {names}"
        error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012  (strawberry reads a class attribute)

        def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            return info.context.principal.role in admitted

    Allowed.__name__ = f"Allow_{'_'.join(sorted(role.value for role in admitted))}"
    return Allowed


ADMIN = allow(Role.ADMIN)
ANYONE = allow(*Role)


class MetricsReaders(BasePermission):
    """Admins, and partners whose key grants ``shopMetrics`` among its fields."""

    message = "this field needs the admin role or a partner key granted shopMetrics"
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012  (strawberry reads a class attribute)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.may_read_shop_metrics

"""Field-level permissions: each root field and sensitive field names the roles it admits.

The roles are class attributes, known before any request: ``api.access_table`` reads them to
write the table of docs/access.md.
"""

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from profilegate.api.context import Info
from profilegate.domain.keys import Role

ALL_ROLES = frozenset(Role)


class RolePermission(BasePermission):
    """A permission admitting the keys of ``roles``, and of ``granted`` when the key is granted
    the field (as a partner key may be granted ``shopMetrics``)."""

    roles: ClassVar[frozenset[Role]]
    granted: ClassVar[frozenset[Role]] = frozenset()


def allow(*roles: Role) -> type[RolePermission]:
    """A permission class admitting exactly ``roles``."""
    admitted = frozenset(roles)
    names = ", ".join(sorted(role.value for role in admitted))

    class Allowed(RolePermission):
        message = f"this field needs one of the roles: {names}"
        error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012  (strawberry reads a class attribute)
        roles = admitted

        def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            return info.context.principal.role in self.roles

    Allowed.__name__ = f"Allow_{'_'.join(sorted(role.value for role in admitted))}"
    return Allowed


ADMIN = allow(Role.ADMIN)
ANYONE = allow(*Role)


class MetricsReaders(RolePermission):
    """Admins, and partners whose key grants ``shopMetrics`` among its fields."""

    message = "this field needs the admin role or a partner key granted shopMetrics"
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012  (strawberry reads a class attribute)
    roles = frozenset({Role.ADMIN})
    granted = frozenset({Role.PARTNER})

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.may_read_shop_metrics

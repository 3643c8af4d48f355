"""The built-in roles and their permissions, as ``bankwx role list`` shows them.

The roles themselves (``ROLES``) are declared with the permission check, in permissions.py.
"""

from __future__ import annotations

from bankwx_cli.domain.permissions import ROLES
from bankwx_cli.models.operators import Role


def list_() -> list[Role]:
    return [Role(role, text, tuple(perms)) for role, (text, perms) in ROLES.items()]

"""Organisations, roles, and the change set of an operator (``models.changes``: KEEP leaves a
field as stored). Operators themselves are in ``models.accounts``: every command reads one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bankwx_cli.models.changes import KEEP, Keep


@dataclass(frozen=True)
class Org:
    name: str
    parent: str | None = None
    id: int = 0


@dataclass(frozen=True)
class Role:
    """A built-in role: what it is for and the permissions it holds (shell-style patterns)."""

    role: str
    description: str
    permissions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "description": self.description,
            "permissions": ", ".join(self.permissions),
        }


@dataclass(frozen=True)
class OperatorUpdate:
    """Columns of an operator to change; ``accounts`` None: every account."""

    role: str | Keep = KEEP
    org_id: int | Keep | None = KEEP
    accounts: tuple[str, ...] | Keep | None = KEEP
    updated_at: str | Keep = KEEP

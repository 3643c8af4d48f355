"""Official accounts and operators: the foundation's models, as every account command reads
them. What fewer commands need lives beside it, so that ``bankwx account list`` does not pay
for it at start-up: ``models.credentials`` (secrets, credential checks), ``models.audit`` (the
audit log), ``models.operators`` (organisations, roles, operators' change sets) and
``models.account_changes`` (accounts' change sets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Secret:
    """A secret string that never prints itself: ``str()`` and ``repr()`` show ``****f3a9``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "****" + self._value[-4:] if len(self._value) >= 12 else "****"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return False
        import hmac  # loaded when secrets are compared, not by every command (start-up time)

        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


# --- Foundation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """An official account as the store holds it (its secrets are sealed, and not here)."""

    name: str
    appid: str
    original_id: str
    type: str
    mode: str
    token_mode: str = "stable"
    welcome: str | None = None
    default_reply: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        """The shape of ``bankwx account show`` (and of list, add, update)."""
        return {
            "name": self.name,
            "appid": self.appid,
            "original_id": self.original_id,
            "type": self.type,
            "mode": self.mode,
            "token_mode": self.token_mode,
            "welcome": self.welcome,
            "default_reply": self.default_reply,
            "settings": self.settings,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    org: str | None = None
    accounts: tuple[str, ...] | None = None  # None: every account
    created_at: str = ""
    updated_at: str = ""
    os_users: tuple[str, ...] = ()  # the login users who act as this operator (identity os)

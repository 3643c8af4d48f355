"""Official accounts, operators and the audit log: the foundation's models."""

from __future__ import annotations

import hmac
from dataclasses import asdict, dataclass, field
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
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

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
class AccountSecrets:
    secret: Secret
    token: Secret
    aes_key: Secret | None


@dataclass(frozen=True)
class SealedSecrets:
    """An account's secrets sealed with the master key, as the store keeps them."""

    secret_enc: bytes
    token_enc: bytes
    aes_key_enc: bytes | None = None


@dataclass(frozen=True)
class CredentialCheck:
    """What ``bankwx account check`` proved: a token fetched and the callback IP list read."""

    account: str
    appid: str
    token_mode: str
    token_age_s: int | None
    token_expires_in_s: int | None
    callback_ips: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "appid": self.appid,
            "credentials": "ok",
            "token_mode": self.token_mode,
            "token_age_s": self.token_age_s,
            "token_expires_in_s": self.token_expires_in_s,
            "callback_ips": len(self.callback_ips),
            "callback_ip_sample": list(self.callback_ips[:3]),
        }


@dataclass(frozen=True)
class TokenState:
    """The shared access token's age and expiry (``bankwx account token``; never the token).

    ``age_s`` None: no token is stored.
    """

    account: str
    token_mode: str
    age_s: int | None = None
    expires_in_s: int | None = None

    def to_json(self) -> dict[str, Any]:
        if self.age_s is None or self.expires_in_s is None:
            return {"account": self.account, "token": "none stored", "age_s": None,
                    "expires_in_s": None}  # fmt: skip
        return {
            "account": self.account,
            "token": "valid" if self.expires_in_s > 0 else "expired",
            "token_mode": self.token_mode,
            "age_s": self.age_s,
            "expires_in_s": self.expires_in_s,
        }


@dataclass(frozen=True)
class SimRegistration:
    """The plain values the simulator needs to play WeChat for an account (loopback only)."""

    name: str
    appid: str
    secret: str
    token: str
    aes_key: str | None
    mode: str
    original_id: str
    callback_url: str

    def to_json(self) -> dict[str, Any]:
        """The simulator's register body."""
        return {
            "name": self.name,
            "appid": self.appid,
            "secret": self.secret,
            "token": self.token,
            "aes_key": self.aes_key,
            "mode": self.mode,
            "original_id": self.original_id,
            "callback_url": self.callback_url,
        }


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
class Operator:
    name: str
    role: str
    org: str | None = None
    accounts: tuple[str, ...] | None = None  # None: every account
    created_at: str = ""
    updated_at: str = ""
    os_users: tuple[str, ...] = ()  # the login users who act as this operator (identity os)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    operator: str
    action: str
    target: str
    params: dict[str, Any]
    outcome: str
    os_user: str = ""  # the operating-system user who ran the command ('' before m0009)
    host: str = ""
    prev_hash: str = ""
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """As ``bankwx audit`` shows it (the chain's previous hash left out)."""
        shown = asdict(self)
        shown.pop("prev_hash")
        return shown

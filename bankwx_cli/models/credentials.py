"""An account's secrets and what is proved or registered with them (``account check``,
``account token``, ``sim register``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bankwx_cli.models.accounts import Secret


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

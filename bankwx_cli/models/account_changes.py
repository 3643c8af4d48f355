"""The change set of an account (``models.changes``: KEEP leaves a field as stored), and what
``account add|update`` did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bankwx_cli.models.changes import KEEP, Keep

if TYPE_CHECKING:
    from bankwx_cli.models.accounts import Account


@dataclass(frozen=True)
class AccountUpdate:
    """Columns of an account to change. Secrets come sealed; ``settings`` is the whole JSON
    document of the account's settings, as it is to be stored; None unsets welcome and
    default_reply."""

    appid: str | Keep = KEEP
    secret_enc: bytes | Keep = KEEP
    token_enc: bytes | Keep = KEEP
    aes_key_enc: bytes | Keep = KEEP
    original_id: str | Keep = KEEP
    type: str | Keep = KEEP
    token_mode: str | Keep = KEEP
    welcome: str | Keep | None = KEEP
    default_reply: str | Keep | None = KEEP
    mode: str | Keep = KEEP
    settings: dict[str, Any] | Keep = KEEP
    updated_at: str | Keep = KEEP


@dataclass
class AccountChange:
    """The account as ``account add|update`` left it, and what the operator should know."""

    account: Account
    warnings: list[str] = field(default_factory=list)

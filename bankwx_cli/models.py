"""Plain dataclasses passed between layers. Imports nothing from the project."""

from __future__ import annotations

import hmac
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
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


# --- Passive replies (protocol sheet §3) -----------------------------------------------------


@dataclass(frozen=True)
class TextReply:
    content: str
    kind: str = field(default="text", init=False)


@dataclass(frozen=True)
class ImageReply:
    media_id: str
    kind: str = field(default="image", init=False)


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    picurl: str = ""


@dataclass(frozen=True)
class NewsReply:
    """A news reply. WeChat shows one article in reply to a follower's message (§3.2)."""

    article: Article
    kind: str = field(default="news", init=False)


@dataclass(frozen=True)
class TransferReply:
    """Hand the follower over to the customer-service (agent) system."""

    kf_account: str | None = None
    kind: str = field(default="transfer_customer_service", init=False)


Reply = TextReply | ImageReply | NewsReply | TransferReply


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    """A JSON-friendly form of a reply, for the conversation log and `--format json`."""
    if isinstance(reply, TextReply):
        return {"kind": "text", "content": reply.content}
    if isinstance(reply, ImageReply):
        return {"kind": "image", "media_id": reply.media_id}
    if isinstance(reply, NewsReply):
        a = reply.article
        return {
            "kind": "news",
            "title": a.title,
            "description": a.description,
            "url": a.url,
            "picurl": a.picurl,
        }
    return {"kind": "transfer_customer_service", "kf_account": reply.kf_account}


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


@dataclass(frozen=True)
class AccountSecrets:
    secret: Secret
    token: Secret
    aes_key: Secret | None


@dataclass(frozen=True)
class Org:
    name: str
    parent: str | None = None
    id: int = 0


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    org: str | None = None
    accounts: tuple[str, ...] | None = None  # None: every account
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    operator: str
    action: str
    target: str
    params: dict[str, Any]
    outcome: str
    prev_hash: str = ""
    hash: str = ""

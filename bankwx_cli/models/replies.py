"""Passive replies (protocol sheet §3): what a callback answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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

"""Followers, tags, follower sync and templates."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

# --- Followers and tags -----------------------------------------------------------------------

SYSTEM_TAG_IDS = frozenset({0, 1, 2})  # WeChat's own tags (星标组...): no rename, no delete


@dataclass(frozen=True)
class Tag:
    """One of an account's follower tags, with WeChat's follower count when last listed."""

    tag_id: int
    name: str
    count: int = 0
    synced_at: str = ""

    @property
    def system(self) -> bool:
        return self.tag_id in SYSTEM_TAG_IDS

    @classmethod
    def from_wechat(cls, item: Mapping[str, Any], synced_at: str) -> Tag:
        """A tag from WeChat's listing (tags/get: ``{"id", "name", "count"}``)."""
        return cls(int(item["id"]), str(item["name"]), int(item.get("count", 0)), synced_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.tag_id,
            "name": self.name,
            "count": self.count,
            "system": self.system,
            "synced_at": self.synced_at,
        }


@dataclass(frozen=True)
class TagChange:
    """A tag change, planned (a dry run) or done."""

    action: str  # create | rename | delete
    account: str
    name: str
    tag_id: int | None = None
    new_name: str | None = None
    members: int = 0  # followers holding the tag, per WeChat's last count

    def headline(self, done: bool) -> str:
        if self.action == "create":
            return (
                f"Created tag '{self.name}' (id {self.tag_id}) on '{self.account}'."
                if done
                else f"Would create tag '{self.name}' on '{self.account}'."
            )
        if self.action == "rename":
            verb = "Renamed" if done else "Would rename"
            return f"{verb} tag '{self.name}' (id {self.tag_id}) to '{self.new_name}'."
        verb = "Deleted" if done else "Would delete"
        return (
            f"{verb} tag '{self.name}' (id {self.tag_id}); WeChat untags its "
            f"{self.members:,} followers."
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Follower:
    """A follower as the store knows it: the sync's record merged with the engine's newer
    subscribe and unsubscribe events, and the tags the follower holds."""

    openid: str
    subscribed: bool
    subscribe_at: str | None = None
    subscribe_scene: str | None = None
    blacklisted: bool = False
    remark: str | None = None
    unsubscribe_at: str | None = None
    qr_scene: int | None = None
    qr_scene_str: str | None = None
    language: str | None = None
    unionid: str | None = None
    profile_at: str | None = None
    listed_at: str | None = None
    source: str = "sync"  # sync | engine: which of the two said the latest
    tag_ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()  # the tags' names (the id when the store does not know it)

    def to_json(self) -> dict[str, Any]:
        """The listing's shape (``bankwx follower list``)."""
        return {
            "openid": self.openid,
            "subscribed": self.subscribed,
            "subscribe_at": self.subscribe_at,
            "subscribe_scene": self.subscribe_scene,
            "tags": list(self.tags),
            "tag_ids": list(self.tag_ids),
            "blacklisted": self.blacklisted,
            "remark": self.remark,
        }


@dataclass(frozen=True)
class FollowerRecord(Follower):
    """Everything the store knows of one follower (``bankwx follower show``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "unsubscribe_at": self.unsubscribe_at,
            "qr_scene": self.qr_scene,
            "qr_scene_str": self.qr_scene_str,
            "language": self.language,
            "unionid": self.unionid,
            "profile_at": self.profile_at,
            "listed_at": self.listed_at,
            "source": self.source,
        }


class Profile(NamedTuple):
    """A follower's profile as WeChat's user/info (or batchget) answered it, parsed once where
    the answer arrives (``from_wechat``) and written by the store.

    A tuple, one a follower, for the sync's sake (millions of them, read by position): the
    first eight fields are the values of the stored columns as WeChat sent them, which the
    store's SQL converts ("" and 0 mean none; ``subscribe_time`` is Unix seconds). A follower
    who left (``subscribed`` False) has only an openid.
    """

    openid: str
    subscribe_time: int | None
    subscribe_scene: str | None
    qr_scene: int | None
    qr_scene_str: str | None
    language: str | None
    remark: str | None
    unionid: str | None
    subscribed: bool
    tag_ids: tuple[int, ...]  # WeChat's tagid_list (ids that are not numbers left out)

    @classmethod
    def from_wechat(cls, info: Mapping[str, Any]) -> Profile:
        """KeyError when there is no openid (``named`` tells)."""
        get = info.get
        listed = get("tagid_list")
        tag_ids = tuple(int(t) for t in listed if str(t).lstrip("-").isdigit()) if listed else ()
        return cls(
            str(info["openid"]),
            get("subscribe_time"),
            get("subscribe_scene"),
            get("qr_scene"),
            get("qr_scene_str"),
            get("language"),
            get("remark"),
            get("unionid"),
            get("subscribe") == 1,
            tag_ids,
        )


PROFILE_COLUMNS = 8  # Profile's first fields: the followers columns' values


def parse_profiles(infos: Iterable[Mapping[str, Any]]) -> list[Profile]:
    """The profiles of a user/info answer's items (``user_info_list``); an item without an
    openid names no follower and is left out."""
    return [Profile.from_wechat(info) for info in infos if info.get("openid")]


@dataclass(frozen=True)
class SyncReport:
    """What one run of ``follower sync`` did (a resumed pass counts from its start)."""

    account: str
    kind: str  # full | incremental
    resumed: bool
    pages: int
    listed: int
    new: int
    profiles: int
    unsubscribed: int
    blacklisted: int
    tags: int
    total: int | None  # followers WeChat counts
    subscribed: int  # subscribed followers in the store afterwards
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        how = "resumed " if self.resumed else ""
        return (
            f"Synced followers of '{self.account}' ({how}{self.kind} pass): "
            f"{self.listed:,} listed in {self.pages} pages, {self.new:,} new, "
            f"{self.profiles:,} profiles fetched, {self.unsubscribed:,} unsubscribed, "
            f"{self.blacklisted:,} blacklisted, {self.tags} tags; "
            f"{self.subscribed:,} subscribed followers in the store ({self.seconds:.1f} s)."
        )


@dataclass(frozen=True)
class FollowerCounts:
    """How many followers of an account the store knows, is subscribed, lacks a profile."""

    known: int = 0
    subscribed: int = 0
    without_profile: int = 0


@dataclass(frozen=True)
class SyncProgress:
    """The progress of an account's follower sync, as saved after every page and commit (one
    row per account): the pass under way or the last one, and the lease of its process."""

    account: str
    pass_no: int = 0
    kind: str = "full"  # full | incremental
    phase: str = "done"  # list | load | profiles | extras | done
    cursor: str = ""  # where the list continues
    tail: str = ""  # the last follower listed (an incremental pass starts after it)
    pages: int = 0
    listed: int = 0
    new: int = 0
    total: int | None = None  # followers WeChat counts
    profiles: int = 0
    unsubscribed: int = 0
    started_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    last_full_at: str | None = None
    holder: str | None = None  # host:pid of the process running it
    heartbeat_at: float | None = None  # when that process last saved (epoch seconds)
    first_load: bool = False  # the account's first pass: the list staged, then loaded


@dataclass(frozen=True)
class SyncStatus:
    """The last (or the interrupted) sync pass of an account, and the store's counts."""

    account: str
    phase: str  # list | load | profiles | extras | done | never synced
    kind: str | None = None
    pages: int | None = None
    listed: int | None = None
    profiles: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    last_full_at: str | None = None
    known: int = 0
    subscribed: int = 0
    without_profile: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Template:
    """A template message of an account, as WeChat lists it (``bankwx template``)."""

    account: str
    template_id: str
    title: str
    content: str
    example: str = ""
    primary_industry: str = ""
    deputy_industry: str = ""
    synced_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fields(self) -> list[str]:
        """The data fields a message needs: the content's {{NAME.DATA}} placeholders."""
        return re.findall(r"\{\{(\w+)\.DATA\}\}", self.content)

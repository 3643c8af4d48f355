"""Menu versions: one recorded version of an account's menu."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bankwx_cli.models.changes import KEEP, Keep


@dataclass(frozen=True)
class MenuCall:
    """One call of a menu deploy as its version records it: the call's path (for the call that
    failed, where the deploy stopped) and ``answer``: what the call named (``menuid`` of a
    conditional menu removed, ``matchrule`` of one added), then WeChat's answer as WeChat gave
    it (``errcode``, ``errmsg``, ``menuid``): WeChat's JSON, kept as such."""

    call: str
    answer: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"call": self.call, **self.answer}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MenuCall:
        return cls(str(data["call"]), {k: v for k, v in data.items() if k != "call"})


@dataclass(frozen=True)
class MenuVersion:
    """One recorded version of an account's menu.

    ``content`` is the menu in WeChat's menu/get shape, a WeChat document kept as such
    (``menu_files.parse_menu_data`` makes it a ``MenuSpec``); ``wechat_answer`` the calls of
    its deploy.
    """

    account: str
    version: int
    state: str
    content: dict[str, Any]
    hash: str
    source: str
    created_by: str
    created_at: str
    rollback_of: int | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    deployed_by: str | None = None
    deployed_at: str | None = None
    wechat_answer: tuple[MenuCall, ...] = ()
    note: str = ""

    def row(self) -> dict[str, Any]:
        """The history line: short hash, no content."""
        return {
            "version": self.version,
            "state": self.state,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "decided_by": self.decided_by,
            "deployed_at": self.deployed_at,
            "hash": self.hash[:12],
            "source": self.source,
            "note": self.note,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.row(),
            "hash": self.hash,
            "rollback_of": self.rollback_of,
            "decided_at": self.decided_at,
            "reason": self.reason,
            "deployed_by": self.deployed_by,
            "wechat_answer": [call.to_json() for call in self.wechat_answer],
            "content": self.content,
        }


@dataclass(frozen=True)
class MenuVersionChange:
    """What a decision or a deploy's outcome changes in a recorded version (a change set:
    ``KEEP`` leaves the field as stored)."""

    state: str | Keep = KEEP
    decided_by: str | Keep | None = KEEP
    decided_at: str | Keep | None = KEEP
    reason: str | Keep | None = KEEP
    deployed_by: str | Keep | None = KEEP
    deployed_at: str | Keep | None = KEEP
    wechat_answer: tuple[MenuCall, ...] | Keep = KEEP
    note: str | Keep = KEEP


@dataclass(frozen=True)
class PulledMenu:
    """The live menu of an account in menu/get's shape, without menuids (``menu pull``)."""

    account: str
    content: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.content


class _Plan(Protocol):
    """A menu plan (domain/menus.py's MenuPlan): what it knows of its JSON shape."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MenuOutcome:
    """A deploy, rollback or approval, for ``--format json``: the plan and what became of it
    (the version recorded and its state; None for a dry run that recorded nothing)."""

    plan: _Plan
    dry_run: bool
    version: int | None = None
    state: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "dry_run": self.dry_run,
            "version": self.version,
            "state": self.state,
        }

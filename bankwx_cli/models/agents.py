"""Agents (统一客服坐席): groups, agents, and what a change to them did."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bankwx_cli.models.changes import KEEP, Keep

POLICIES = ("round-robin", "least-busy")
STATUSES = ("online", "busy", "away", "offline")


@dataclass(frozen=True)
class AgentGroup:
    id: int
    account: str
    name: str
    policy: str
    queue_timeout: int  # seconds a follower may wait before the timeout text
    sla: int  # first-response target, seconds
    away_text: str | None
    timeout_text: str | None
    agents: tuple[str, ...] = ()
    waiting: int = 0

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["agents"] = list(self.agents)
        return found


@dataclass(frozen=True)
class Agent:
    id: int
    account: str
    name: str  # the operator
    groups: tuple[str, ...]
    max_sessions: int
    kf_account: str | None
    nickname: str | None
    status: str
    status_at: str | None
    sessions: int = 0  # open sessions now
    last_assigned_at: str | None = None  # round-robin picks the agent assigned longest ago

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["groups"] = list(self.groups)
        return found


@dataclass(frozen=True)
class AgentChange:
    """What ``agent add|update|remove`` did, or would do (``--dry-run``)."""

    action: str  # add, update, remove
    account: str
    name: str
    wechat: tuple[str, ...] = ()  # the WeChat calls made (or planned)
    changes: dict[str, Any] = field(default_factory=dict)
    agent: Agent | None = None

    def headline(self, done: bool) -> str:
        verb = {"add": "Added", "update": "Updated", "remove": "Removed"}[self.action]
        if not done:
            verb = f"Would {self.action}"
        calls = f"; WeChat: {', '.join(self.wechat)}" if self.wechat else ""
        return f"{verb} agent '{self.name}' on account '{self.account}'{calls}."

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "account": self.account,
            "name": self.name,
            "wechat": list(self.wechat),
            "changes": self.changes,
            "agent": self.agent.to_json() if self.agent else None,
        }


@dataclass(frozen=True)
class KfDrift:
    """One difference between the store's agents and WeChat's kf accounts (``agent sync``)."""

    kf_account: str
    agent: str | None  # the store's agent holding it, if any
    problem: str  # missing (store has it, WeChat not), nickname, unknown (WeChat only)
    store_nickname: str | None
    wechat_nickname: str | None
    repair: str | None  # the WeChat call that repairs it; None: shown only

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SESSION_STATES = ("waiting", "open", "closed", "expired")
CLOSE_REASONS = ("agent", "follower", "idle", "timeout", "unsubscribed", "supervisor", "wechat")


@dataclass(frozen=True)
class AgentSession:
    """A follower's wait for an agent and the conversation that follows (``agent sessions``)."""

    id: int
    account: str
    openid: str
    agent: str | None
    group: str | None
    state: str  # SESSION_STATES
    entered_at: str
    opened_at: str | None
    closed_at: str | None
    close_reason: str | None
    first_response_s: float | None
    rating: int | None
    notice_at: str | None = None
    group_id: int | None = None
    agent_id: int | None = None
    window_expires_at: str | None = None  # the follower's customer-service window
    messages_left: int | None = None  # what it still allows
    unknown_units: int = 0  # replies a crash left unknown (outbox retry sends one again)
    rating_asked_at: str | None = None

    @property
    def live(self) -> bool:
        return self.state in ("waiting", "open")

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        for internal in ("notice_at", "group_id", "agent_id", "rating_asked_at"):
            found.pop(internal)
        return found


@dataclass(frozen=True)
class QueueEntry:
    """A waiting follower (``agent queue``): longest waiting first."""

    session: int
    account: str
    openid: str
    group: str | None
    position: int  # 1: next
    entered_at: str
    waiting_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AgentReply:
    """What ``agent reply`` enqueued (``--format json``)."""

    session: int
    unit: int  # the outbox unit
    messages_left: int  # what the follower's window still allows after this one

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SessionMessage:
    """A line of a session's transcript (content masked)."""

    id: int
    at: str
    direction: str  # in (the follower) or out (the agent)
    msg_type: str
    content: str | None
    sender: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- what the domain asks the store to write (``models.changes``: KEEP leaves a field) -------


@dataclass(frozen=True)
class NewAgentGroup:
    account: str
    name: str
    policy: str
    queue_timeout: int
    sla: int
    away_text: str | None
    timeout_text: str | None
    created_by: str
    at: str  # created and updated


@dataclass(frozen=True)
class AgentGroupUpdate:
    policy: str | Keep = KEEP
    queue_timeout: int | Keep = KEEP
    sla: int | Keep = KEEP
    away_text: str | Keep | None = KEEP
    timeout_text: str | Keep | None = KEEP


@dataclass(frozen=True)
class NewAgent:
    """An agent as added: offline, its groups set apart (``Agents.set_groups``)."""

    account: str
    name: str
    max_sessions: int
    kf_account: str | None
    nickname: str | None
    created_by: str
    at: str  # created, updated and status


@dataclass(frozen=True)
class AgentUpdate:
    """An agent's columns to change (its groups are set apart)."""

    max_sessions: int | Keep = KEEP
    kf_account: str | Keep | None = KEEP
    nickname: str | Keep | None = KEEP

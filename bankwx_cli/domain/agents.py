"""Agents (统一客服坐席): groups, agents, their WeChat kf accounts, status (``bankwx agent``).

An agent is an operator whose role allows ``agent.work``, serving one account, in one or more
of that account's groups, with at most ``max_sessions`` open sessions and, when its replies are
to carry one, a WeChat kf account (``PREFIX@WECHATID``). WeChat is changed first, then the
store: a kf account WeChat refuses leaves the store as it was (exit 3). ``agent sync`` shows
and repairs drift between the two; it never deletes a kf account the store does not know.

Permissions: ``agent.manage`` (agents and groups), ``agent.work`` (one's own status and
sessions), ``agent.supervise`` (anyone's), ``agent.read`` (the lists).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import iso, parse_user_time
from bankwx_cli.domain import accounts, audit, windows
from bankwx_cli.domain.account_settings import Setting, choice, int_range
from bankwx_cli.domain.followers import account_for
from bankwx_cli.domain.permissions import role_allows
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError, WeChatError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.agents import (
    POLICIES,
    SESSION_STATES,
    STATUSES,
    Agent,
    AgentChange,
    AgentGroup,
    AgentGroupUpdate,
    AgentReply,
    AgentSession,
    AgentUpdate,
    KfDrift,
    NewAgent,
    NewAgentGroup,
    QueueEntry,
    SessionMessage,
)
from bankwx_cli.models.messages import OutboundRow
from bankwx_cli.models.outbox import OutboxUnit
from bankwx_cli.models.replies import Reply, TextReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.actions import ActionContext
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.extensions import Registry
    from bankwx_cli.wechat.callback import Inbound

log = logging.getLogger(__name__)

KF_ADD = "/customservice/kfaccount/add"
KF_UPDATE = "/customservice/kfaccount/update"
KF_DEL = "/customservice/kfaccount/del"
KF_LIST = "/cgi-bin/customservice/getkflist"
KF_INVALID = 65401  # WeChat: no such kf account
KF_EXISTS = 65406

KF_ACCOUNT_RE = re.compile(r"([A-Za-z0-9_]{1,10})@([A-Za-z0-9_-]{1,30})")
WECHAT_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,29}")
NAME_RE = re.compile(r"[^\s,]{1,32}")
NICKNAME_MAX = 16
MAX_SESSIONS = (1, 100)
QUEUE_TIMEOUT = (10, 86_400)
SLA = (5, 3_600)
DEFAULT_QUEUE_TIMEOUT = 300
DEFAULT_SLA = 60
DEFAULT_MAX_SESSIONS = 5


def _now(app: AppContext) -> str:
    return iso(app.clock.now())


# --- checks --------------------------------------------------------------------------------


def check_name(what: str, name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ValidationError(
            f"{what} name '{name}' is invalid: 1 to 32 characters, no spaces or commas."
        )
    return name


def check_kf_account(account: Account, kf_account: str) -> str:
    """PREFIX@WECHATID: a prefix of at most 10 letters, digits or _, and the account's WeChat
    id (the ``wechat_id`` setting, when set)."""
    found = KF_ACCOUNT_RE.fullmatch(kf_account)
    if found is None:
        raise ValidationError(
            f"kf account '{kf_account}' is invalid: PREFIX@WECHATID, the prefix 1 to 10 "
            "letters, digits or _, the WeChat id at most 30 characters (e.g. zhang@bankwx)."
        )
    wechat_id = _setting(account, "wechat_id")
    if wechat_id and found.group(2) != wechat_id:
        raise ValidationError(
            f"kf account '{kf_account}' must end in @{wechat_id}, the WeChat id of account "
            f"'{account.name}' (setting wechat_id)."
        )
    return kf_account


def check_nickname(nickname: str) -> str:
    if not nickname.strip() or len(nickname) > NICKNAME_MAX:
        raise ValidationError(
            f"nickname '{nickname}' is invalid: 1 to {NICKNAME_MAX} characters (WeChat's limit)."
        )
    return nickname


def _in_range(option: str, value: int, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise ValidationError(f"{option} {value} is out of range: {low} to {high}.")
    return value


def _setting(account: Account, key: str) -> Any:
    from bankwx_cli.domain.account_settings import value

    return value(account, key)


def _group_of(app: AppContext, account: str, name: str) -> AgentGroup:
    found = app.store.agents.group(account, name)
    if found is None:
        raise NotFoundError(
            f"no agent group named '{name}' on account '{account}'. See bankwx agent group list."
        )
    return found


def _agent_of(app: AppContext, account: str, name: str) -> Agent:
    found = app.store.agents.get(account, name)
    if found is None:
        raise NotFoundError(
            f"no agent named '{name}' on account '{account}'. See bankwx agent list."
        )
    return found


# --- groups --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSpec:
    """What ``agent group add|update`` sets (None: not given)."""

    policy: str | None = None
    queue_timeout: int | None = None
    sla: int | None = None
    away_text: str | None = None
    timeout_text: str | None = None

    def checked(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.policy is not None:
            if self.policy not in POLICIES:
                raise ValidationError(f"--policy must be one of {', '.join(POLICIES)}.")
            changes["policy"] = self.policy
        if self.queue_timeout is not None:
            changes["queue_timeout"] = _in_range(
                "--queue-timeout", self.queue_timeout, QUEUE_TIMEOUT
            )
        if self.sla is not None:
            changes["sla"] = _in_range("--sla", self.sla, SLA)
        for key in ("away_text", "timeout_text"):
            text = getattr(self, key)
            if text is not None:
                if not text.strip() or len(text.encode()) > 2048:
                    raise ValidationError(f"--{key.replace('_', '-')} must be 1 to 2048 bytes.")
                changes[key] = text
        return changes


def add_group(app: AppContext, account_name: str | None, name: str, spec: GroupSpec) -> AgentGroup:
    account = account_for(app, "agent.manage", account_name)
    check_name("group", name)
    values = {"policy": "round-robin", "queue_timeout": DEFAULT_QUEUE_TIMEOUT, "sla": DEFAULT_SLA,
              "away_text": None, "timeout_text": None, **spec.checked()}  # fmt: skip
    with app.store.transaction():
        if app.store.agents.group(account.name, name) is not None:
            raise ConflictError(f"agent group '{name}' exists on account '{account.name}'.")
        if app.store.agents.get(account.name, name) is not None:
            raise ConflictError(
                f"'{name}' is an agent of account '{account.name}': a group may not share an "
                "agent's name (transfers name either)."
            )
        app.store.agents.add_group(
            NewAgentGroup(
                account=account.name, name=name, created_by=app.operator, at=_now(app), **values
            )
        )
        audit.record(app, "agent.group.add", account.name, {"group": name, **values})
    return _group_of(app, account.name, name)


def list_groups(app: AppContext, account_name: str | None) -> list[AgentGroup]:
    account = account_for(app, "agent.read", account_name)
    return app.store.agents.groups(account.name)


def update_group(
    app: AppContext, account_name: str | None, name: str, spec: GroupSpec
) -> AgentGroup:
    account = account_for(app, "agent.manage", account_name)
    changes = spec.checked()
    if not changes:
        raise ValidationError("nothing to change: give at least one option.")
    with app.store.transaction():
        group = _group_of(app, account.name, name)
        app.store.agents.update_group(group.id, AgentGroupUpdate(**changes), _now(app))
        audit.record(app, "agent.group.update", account.name, {"group": name, **changes})
    return _group_of(app, account.name, name)


def _group_users(app: AppContext, account: Account, name: str) -> list[str]:
    """What would break if the group went: the default group setting, rules naming it."""
    users = []
    if _setting(account, "default_group") == name:
        users.append("the account's default_group setting")
    for rule in app.store.keyword_rules.for_account(account.name):
        if rule.action == "talk_to_agent" and rule.arg == name:
            users.append(f"keyword rule {rule.id}")
    return users


def remove_group(app: AppContext, account_name: str | None, name: str) -> AgentGroup:
    account = account_for(app, "agent.manage", account_name)
    with app.store.transaction():
        group = _group_of(app, account.name, name)
        if group.waiting:
            raise ConflictError(
                f"agent group '{name}' has {group.waiting} follower(s) waiting: serve or close "
                "them first (bankwx agent queue)."
            )
        users = _group_users(app, account, name)
        if users:
            raise ConflictError(f"agent group '{name}' is in use by {', '.join(users)}.")
        app.store.agents.remove_group(group.id, _now(app))
        audit.record(app, "agent.group.remove", account.name, {"group": name})
    return group


# --- agents --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSpec:
    """What ``agent add|update`` sets (None: not given)."""

    groups: tuple[str, ...] | None = None
    max_sessions: int | None = None
    kf_account: str | None = None
    nickname: str | None = None


def _operator_may_work(app: AppContext, account: Account, name: str) -> None:
    operator = app.store.operators.get(name)
    if operator is None:
        raise NotFoundError(
            f"no operator named '{name}': an agent is an operator (bankwx operator add)."
        )
    if not role_allows(operator.role, "agent.work"):
        raise ValidationError(
            f"operator '{name}' is a {operator.role}, whose role does not allow agent.work: "
            "give them the agent or supervisor role first (bankwx operator update)."
        )
    if operator.accounts is not None and account.name not in operator.accounts:
        raise ValidationError(
            f"operator '{name}' may not use account '{account.name}' "
            f"(limited to {', '.join(operator.accounts) or 'none'})."
        )


def _group_ids(app: AppContext, account: str, names: tuple[str, ...]) -> list[int]:
    return [_group_of(app, account, check_name("group", n)).id for n in dict.fromkeys(names)]


def plan_add(app: AppContext, account_name: str | None, name: str, spec: AgentSpec) -> AgentChange:
    account = account_for(app, "agent.manage", account_name)
    check_name("agent", name)
    _operator_may_work(app, account, name)
    if app.store.agents.get(account.name, name) is not None:
        raise ConflictError(f"'{name}' is already an agent of account '{account.name}'.")
    if app.store.agents.group(account.name, name) is not None:
        raise ConflictError(
            f"'{name}' is an agent group of account '{account.name}': an agent may not share "
            "a group's name."
        )
    groups = spec.groups or ()
    _group_ids(app, account.name, groups)
    max_sessions = _in_range("--max-sessions", spec.max_sessions or DEFAULT_MAX_SESSIONS,
                             MAX_SESSIONS)  # fmt: skip
    changes: dict[str, Any] = {"groups": list(groups), "max_sessions": max_sessions}
    wechat: tuple[str, ...] = ()
    if spec.nickname is not None and spec.kf_account is None:
        raise ValidationError("--nickname is the kf account's: give --kf-account too.")
    if spec.kf_account is not None:
        kf_account = check_kf_account(account, spec.kf_account)
        _kf_free(app, account.name, kf_account)
        changes["kf_account"] = kf_account
        changes["nickname"] = check_nickname(spec.nickname or name[:NICKNAME_MAX])
        wechat = (f"kfaccount/add {kf_account}",)
    return AgentChange("add", account.name, name, wechat, changes)


def _kf_free(app: AppContext, account: str, kf_account: str, but: str | None = None) -> None:
    holder = app.store.agents.by_kf_account(account, kf_account)
    if holder is not None and holder.name != but:
        raise ConflictError(f"kf account '{kf_account}' belongs to agent '{holder.name}'.")


def _kf_add(app: AppContext, account: Account, kf_account: str, nickname: str) -> None:
    """Create the kf account on WeChat; one that exists there already is adopted (renamed)."""
    client = app.client(account)
    body = {"kf_account": kf_account, "nickname": nickname}
    try:
        client.post(KF_ADD, body)
    except WeChatError as exc:
        if exc.errcode != KF_EXISTS:
            raise
        client.post(KF_UPDATE, body)


def add(app: AppContext, account_name: str | None, name: str, spec: AgentSpec) -> AgentChange:
    """Make the operator an agent of the account: WeChat's kf account first, then the store.
    Raises NotFoundError, ValidationError, ConflictError, WeChatError."""
    change = plan_add(app, account_name, name, spec)
    account = accounts.get(app, change.account)
    values = change.changes
    if "kf_account" in values:
        _kf_add(app, account, values["kf_account"], values["nickname"])
    with app.store.transaction():
        agent_id = app.store.agents.add(
            NewAgent(
                account=account.name,
                name=name,
                max_sessions=values["max_sessions"],
                kf_account=values.get("kf_account"),
                nickname=values.get("nickname"),
                created_by=app.operator,
                at=_now(app),
            )
        )
        app.store.agents.set_groups(agent_id, _group_ids(app, account.name, spec.groups or ()))
        audit.record(app, "agent.add", account.name, {"agent": name, **values})
    return replace(change, agent=_agent_of(app, account.name, name))


def plan_update(
    app: AppContext, account_name: str | None, name: str, spec: AgentSpec
) -> AgentChange:
    account = account_for(app, "agent.manage", account_name)
    agent = _agent_of(app, account.name, name)
    changes: dict[str, Any] = {}
    if spec.groups is not None:
        _group_ids(app, account.name, spec.groups)
        if tuple(sorted(set(spec.groups))) != tuple(sorted(agent.groups)):
            changes["groups"] = sorted(set(spec.groups))
    if spec.max_sessions is not None and spec.max_sessions != agent.max_sessions:
        changes["max_sessions"] = _in_range("--max-sessions", spec.max_sessions, MAX_SESSIONS)
    wechat: list[str] = []
    kf_account = agent.kf_account
    if spec.kf_account is not None and spec.kf_account != agent.kf_account:
        kf_account = check_kf_account(account, spec.kf_account)
        _kf_free(app, account.name, kf_account, but=name)
        changes["kf_account"] = kf_account
        wechat.append(f"kfaccount/add {kf_account}")
        if agent.kf_account:
            wechat.append(f"kfaccount/del {agent.kf_account}")
    nickname = spec.nickname
    if nickname is not None and kf_account is None:
        raise ValidationError("--nickname is the kf account's: give --kf-account too.")
    if "kf_account" in changes:
        changes["nickname"] = check_nickname(nickname or agent.nickname or name[:NICKNAME_MAX])
    elif nickname is not None and nickname != agent.nickname:
        changes["nickname"] = check_nickname(nickname)
        wechat.append(f"kfaccount/update {kf_account}")
    if not changes:
        raise ValidationError(f"agent '{name}' already is as asked: nothing to change.")
    return AgentChange("update", account.name, name, tuple(wechat), changes, agent)


def update(app: AppContext, account_name: str | None, name: str, spec: AgentSpec) -> AgentChange:
    """Change an agent: WeChat's kf account first (a new one added before the old one goes),
    then the store."""
    change = plan_update(app, account_name, name, spec)
    account = accounts.get(app, change.account)
    before = change.agent
    assert before is not None  # noqa: S101 - plan_update sets it
    values = change.changes
    if "kf_account" in values:
        _kf_add(app, account, values["kf_account"], values["nickname"])
        if before.kf_account:
            _kf_delete(app, account, before.kf_account)
    elif "nickname" in values:
        app.client(account).post(
            KF_UPDATE, {"kf_account": before.kf_account, "nickname": values["nickname"]}
        )
    with app.store.transaction():
        columns = {k: v for k, v in values.items() if k != "groups"}
        if columns:
            app.store.agents.update(before.id, AgentUpdate(**columns), _now(app))
        if "groups" in values:
            app.store.agents.set_groups(
                before.id, _group_ids(app, account.name, tuple(values["groups"]))
            )
        audit.record(app, "agent.update", account.name, {"agent": name, **values})
    return replace(change, agent=_agent_of(app, account.name, name))


def _kf_delete(app: AppContext, account: Account, kf_account: str) -> None:
    """Delete the kf account on WeChat; one already gone is fine."""
    try:
        app.client(account).get(KF_DEL, {"kf_account": kf_account})
    except WeChatError as exc:
        if exc.errcode != KF_INVALID:
            raise


def plan_remove(app: AppContext, account_name: str | None, name: str) -> AgentChange:
    account = account_for(app, "agent.manage", account_name)
    agent = _agent_of(app, account.name, name)
    if agent.sessions:
        raise ConflictError(
            f"agent '{name}' has {agent.sessions} open session(s): close or transfer them "
            "first (bankwx agent sessions --all)."
        )
    wechat = (f"kfaccount/del {agent.kf_account}",) if agent.kf_account else ()
    return AgentChange("remove", account.name, name, wechat, {}, agent)


def remove(app: AppContext, account_name: str | None, name: str) -> AgentChange:
    change = plan_remove(app, account_name, name)
    account = accounts.get(app, change.account)
    agent = change.agent
    assert agent is not None  # noqa: S101 - plan_remove sets it
    if agent.kf_account:
        _kf_delete(app, account, agent.kf_account)
    with app.store.transaction():
        if app.store.agents.live_sessions(agent.id):
            raise ConflictError(f"agent '{name}' took a session meanwhile: try again.")
        app.store.agents.remove(agent.id, _now(app))
        audit.record(app, "agent.remove", account.name,
                     {"agent": name, "kf_account": agent.kf_account})  # fmt: skip
    return change


def list_(app: AppContext, account_name: str | None) -> list[Agent]:
    account = account_for(app, "agent.read", account_name)
    return app.store.agents.all(account.name)


def set_status(
    app: AppContext, account_name: str | None, status: str, agent_name: str | None = None
) -> Agent:
    """Set an agent's status: one's own (agent.work), or another's (agent.supervise). Busy
    takes no new followers; away and offline are absent."""
    if status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}.")
    own = agent_name is None or agent_name == app.operator
    account = account_for(app, "agent.work" if own else "agent.supervise", account_name)
    name = app.operator if agent_name is None else agent_name
    with app.store.transaction():
        agent = app.store.agents.get(account.name, name)
        if agent is None:
            raise NotFoundError(
                f"'{name}' is not an agent of account '{account.name}'"
                + (" (you act as this operator; see bankwx agent list)." if own else ".")
            )
        app.store.agents.set_status(agent.id, status, _now(app))
        audit.record(app, "agent.status", account.name,
                     {"agent": name, "from": agent.status, "to": status})  # fmt: skip
    return _agent_of(app, account.name, name)


# --- WeChat's kf accounts against the store ---------------------------------------------------


def sync(app: AppContext, account_name: str | None, dry_run: bool = False) -> list[KfDrift]:
    """The differences between the store's agents and WeChat's kf accounts; repaired unless
    ``dry_run`` (a kf account the store lacks is shown, never deleted)."""
    account = account_for(app, "agent.manage", account_name)
    listed = app.client(account).get(KF_LIST).get("kf_list") or []
    on_wechat = {str(k.get("kf_account")): str(k.get("kf_nick") or "") for k in listed}
    drift: list[KfDrift] = []
    for agent in app.store.agents.all(account.name):
        if not agent.kf_account:
            continue
        nick = on_wechat.pop(agent.kf_account, None)
        if nick is None:
            drift.append(KfDrift(agent.kf_account, agent.name, "missing", agent.nickname, None,
                                 "kfaccount/add"))  # fmt: skip
        elif agent.nickname and nick != agent.nickname:
            drift.append(KfDrift(agent.kf_account, agent.name, "nickname", agent.nickname, nick,
                                 "kfaccount/update"))  # fmt: skip
    for kf_account, nick in sorted(on_wechat.items()):
        drift.append(KfDrift(kf_account, None, "unknown", None, nick, None))
    if dry_run:
        return drift
    for item in drift:
        if item.repair == "kfaccount/add":
            _kf_add(app, account, item.kf_account, item.store_nickname or str(item.agent))
        elif item.repair == "kfaccount/update":
            app.client(account).post(
                KF_UPDATE, {"kf_account": item.kf_account, "nickname": item.store_nickname}
            )
    repaired = [d.kf_account for d in drift if d.repair]
    if repaired:
        with app.store.transaction():
            audit.record(app, "agent.sync", account.name, {"repaired": repaired})
    return drift


# --- the queue and sessions ------------------------------------------------------------------
#
# talk_to_agent queues a follower in the handler thread, in a short transaction of its own (the
# receiver's writer shares the store's connection: calling it inside would deadlock). A follower
# has one waiting or open session at most (a unique index): a retry or a second 人工 finds it and
# is answered its position. From then on the follower-state lookup takes the follower's
# messages, in the receiver's writer unit: they go to the transcript, are answered success
# (while waiting, the position at most once a minute), and an end word ends the wait or the
# session. Its candidates query keeps it off the path of every other follower's messages.

POSITION_EVERY_S = 60
#: Test only (BANKWX_TEST_ACTIONS=1): seconds talk_to_agent waits after its transaction commits,
#: before the receiver writes the message's outcome (a process killed there is the crash the
#: unique live session makes harmless).
TEST_PAUSE = "test.agent_queued_pause"
TRANSCRIPT_PLACEHOLDERS = {"image": "[image]", "voice": "[voice]", "video": "[video]",
                           "shortvideo": "[video]", "location": "[location]", "link": "[link]",
                           "file": "[file]"}  # fmt: skip


def _text_of(account: Account, key: str) -> str:
    from bankwx_cli.domain.account_settings import texts_of
    from bankwx_cli.texts import text

    return text(key, texts_of(account))


def _talk_group(app: AppContext, account: Account, arg: str | None) -> AgentGroup | None:
    name = arg or _setting(account, "default_group")
    return app.store.agents.group(account.name, name) if name else None


def validate_talk(app: AppContext, account: Account, arg: str | None) -> None:
    """A rule calling talk_to_agent names an existing group, or the account has a default."""
    if _talk_group(app, account, arg) is not None:
        return
    if arg:
        raise ValidationError(
            f"no agent group named '{arg}' on account '{account.name}' (bankwx agent group list)."
        )
    raise ValidationError(
        f"talk_to_agent needs --arg GROUP, or the account's default_group setting "
        f"(bankwx account set {account.name} default_group GROUP)."
    )


def _minutes(ahead: int, group: AgentGroup, present: int) -> int:
    """The expected wait: the followers ahead and this one, each served within the group's
    first-response target, shared among the agents present."""
    return max(1, -(-(ahead + 1) * group.sla // (max(1, present) * 60)))


def _queued_text(account: Account, ahead: int, minutes: int) -> str:
    found = _text_of(account, "agent_queued")
    return found.replace("{ahead}", str(ahead)).replace("{minutes}", str(minutes))


def _transcript(msg_type: str, content: str) -> str:
    from bankwx_cli.domain.masking import mask

    if msg_type in ("text", "event"):
        return mask(content)
    return TRANSCRIPT_PLACEHOLDERS.get(msg_type, f"[{msg_type}]")


def talk_to_agent(ctx: ActionContext) -> Reply | None:
    """Queue the follower for an agent of the group; answer the position and expected wait."""
    app, account = ctx.app, ctx.account
    group = _talk_group(app, account, ctx.arg)
    if ctx.inbound is None:  # keyword test: nothing is queued
        shown = group.name if group else "(none)"
        return TextReply(f"[talk_to_agent would queue the follower in group {shown}]")
    if group is None:
        log.warning("talk_to_agent: account %s has no group %r", account.name, ctx.arg)
        return TextReply(_text_of(account, "agent_away"))
    present = app.store.agents.available(group.id)
    if present == 0:
        return TextReply(group.away_text or _text_of(account, "agent_away"))
    with app.store.transaction():
        reply = _queue(app, account, ctx.openid, group, present, ctx.msg_type, ctx.text)
    pause = int(_setting(account, TEST_PAUSE)) if app.settings.test_actions else 0
    if pause:  # tests: a crash between the queueing and the outcome
        time.sleep(pause)
    return reply


def _queue(
    app: AppContext,
    account: Account,
    openid: str,
    group: AgentGroup,
    present: int,
    msg_type: str,
    text: str,
) -> TextReply | None:
    """Queue the follower in the group (once: a retry finds the live session) and the reply
    telling their position, or None when they are being served already. Joins the caller's
    transaction (talk_to_agent's own, or the receiver's writer unit for a hand-over)."""
    now = app.clock.now()
    at = iso(now)
    windows.heard(app, account.name, openid, _window_kind(msg_type), now)
    session, new = app.store.agents.queue(account.name, openid, group.id, at)
    if new:
        line = _transcript(msg_type, text)
        app.store.agents.add_message(session.id, at, "in", msg_type, line, "follower")
    if session.state != "waiting":
        return None
    ahead = app.store.agents.ahead(session)
    app.store.agents.noticed(session.id, at)
    return TextReply(_queued_text(account, ahead, _minutes(ahead, group, present)))


RATINGS = {5: "非常满意", 4: "满意", 3: "一般", 2: "不满意", 1: "非常不满意"}
RATING_LONGEST = timedelta(seconds=604_800)  # the longest rating_valid allowed


_ENGAGED: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}  # (store, account) -> set


def agent_candidates(app: AppContext, account: Account, openids: list[str]) -> set[str]:
    """Once per group commit: which of the group's followers wait, are in a session or were
    asked for a rating (the lookup checks each account's own rating_valid); with hand-over on,
    every one (their default replies are counted). The account's set is kept while the
    agents' version stands: one point read per group commit."""
    if int(_setting(account, "handover_after")) > 0:
        return set(openids)
    version = app.store.agents.version()
    key = (str(app.store.path), account.name)
    cached = _ENGAGED.get(key)
    if cached is None or cached[0] != version:
        since = iso(app.clock.now() - RATING_LONGEST)
        cached = _ENGAGED[key] = (version, app.store.agents.engaged(account.name, since))
    engaged = cached[1]
    return {openid for openid in openids if openid in engaged} if engaged else set()


def _ask_rating(app: AppContext, session: AgentSession, at: str) -> None:
    """The rating menu (1 to 5; option ids: the session id, then the score), where the
    follower's window allows it; joins the caller's transaction."""
    from bankwx_cli.domain import outbox

    account = accounts.get(app, session.account)
    if windows.allowance(app, session.account, session.openid).left <= 0:
        return
    menu = {"head_content": _text_of(account, "agent_rating"), "tail_content": "",
            "list": [{"id": f"{session.id}{score}", "content": label}
                     for score, label in RATINGS.items()]}  # fmt: skip
    unit = outbox.enqueue_custom(app, session.account, session.openid,
                                 {"msgtype": "msgmenu", "msgmenu": menu},
                                 f"agent-rating:{session.id}", lane="agent",
                                 source=f"agent-session:{session.id}")  # fmt: skip
    if unit is not None:
        app.store.agents.asked_rating(session.id, at)
        audit.record(app, "agent.rating_request", session.account,
                     {"session": session.id, "unit": unit})  # fmt: skip


def _rating_of(session: AgentSession, inbound: Inbound) -> int | None:
    """The score a message gives the session: its rating menu's tap, or a single digit."""
    if inbound.msg_type != "text":
        return None
    tapped = inbound.fields.get("bizmsgmenuid", "")
    prefix = str(session.id)
    if tapped:
        score = tapped[len(prefix) :] if tapped.startswith(prefix) else ""
        return int(score) if score in ("1", "2", "3", "4", "5") else None
    content = (inbound.content or "").strip()
    return int(content) if content in ("1", "2", "3", "4", "5") else None


def _take_rating(app: AppContext, account: Account, inbound: Inbound) -> Decision | None:
    from bankwx_cli.domain.routing import Decision

    valid = timedelta(seconds=int(_setting(account, "rating_valid")))
    since = iso(app.clock.now() - valid)
    pending = app.store.agents.rating_pending(account.name, inbound.openid, since)
    score = _rating_of(pending, inbound) if pending is not None else None
    if pending is None or score is None or not app.store.agents.rate(pending.id, score):
        return None
    return Decision(TextReply(_text_of(account, "agent_thanks")), route="agent", outcome="rated")


def agent_lookup(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """Inside the receiver's writer unit: a message of a follower who waits or is served."""
    from bankwx_cli.domain.routing import Decision

    account = runtime.account
    session = app.store.agents.live(account.name, inbound.openid)
    if session is None:
        return _take_rating(app, account, inbound) or _hand_over(app, runtime, inbound)
    now = app.clock.now()
    at = iso(now)
    content = inbound.content or ""
    windows.heard(app, account.name, inbound.openid, "message", now)
    if inbound.msg_type == "text" and content.strip() in _setting(account, "end_words"):
        app.store.agents.close(session.id, "follower", at)
        app.store.agents.add_message(session.id, at, "in", "text", _transcript("text", content),
                                     "follower")  # fmt: skip
        if session.state == "open":
            _ask_rating(app, session, at)
            _mirror(app, session, _kf_of(app, session), "close")
        return Decision(TextReply(_text_of(account, "agent_ended")), route="agent",
                        outcome="ended")  # fmt: skip
    app.store.agents.add_message(session.id, at, "in", inbound.msg_type,
                                 _transcript(inbound.msg_type, content), "follower")  # fmt: skip
    if session.state == "open":
        return Decision(None, route="agent", outcome="forwarded")
    last = session.notice_at
    recent = last is not None and (now - _parsed(last)).total_seconds() < POSITION_EVERY_S
    if recent and not _asks_again(app, session, inbound):
        return Decision(None, route="agent", outcome="queued")
    app.store.agents.noticed(session.id, at)
    group = app.store.agents.group_by_id(session.group_id) if session.group_id else None
    ahead = app.store.agents.ahead(session)
    present = app.store.agents.available(group.id) if group else 0
    minutes = _minutes(ahead, group, present) if group else 1
    return Decision(TextReply(_queued_text(account, ahead, minutes)), route="agent",
                    outcome="queued")  # fmt: skip


def _asks_again(app: AppContext, session: AgentSession, inbound: Inbound) -> bool:
    """The message that queued the follower, once more: WeChat delivering it again (a receiver
    crashed after queueing, before the outcome was written) or a second 人工. It is answered the
    position, whenever the last notice was."""
    if inbound.msg_type != "text":
        return False
    first = next((m for m in app.store.agents.messages(session.id) if m.direction == "in"), None)
    return (
        first is not None
        and first.msg_type == "text"
        and first.content == _transcript("text", inbound.content or "")
    )


def _window_kind(msg_type: str) -> str:
    return "event" if msg_type == "event" else "message"


REPLY_MAX_BYTES = 2048


def reply(
    app: AppContext, session_id: int, text: str, account_name: str | None = None
) -> AgentReply:
    """Send a text to the follower of one's open session, as one's kf account: checked against
    the follower's customer-service window and enqueued in the agent lane with its transcript,
    log and audit rows, in one transaction; refused with nothing enqueued otherwise."""
    from bankwx_cli.domain import outbox
    from bankwx_cli.domain.masking import mask

    session = _session_row(app, "agent.work", session_id, account_name)
    if session.agent != app.operator:
        raise ConflictError(
            f"session {session_id} is served by {session.agent or 'nobody yet'}, not by you "
            f"('{app.operator}')."
        )
    if session.state != "open":
        raise ConflictError(
            f"session {session_id} is {session.state}: only an open one takes replies."
        )
    if not text.strip() or len(text.encode()) > REPLY_MAX_BYTES:
        raise ValidationError(f"a reply is 1 to {REPLY_MAX_BYTES} bytes of text.")
    agent = _me(app, accounts.get(app, session.account))
    now = app.clock.now()
    at = iso(now)
    with app.store.transaction():
        allowed = windows.allowance(app, session.account, session.openid)
        if not allowed.open:
            raise ConflictError(
                "the follower's customer-service window is closed (it opens for 48 hours when "
                "they write): WeChat would refuse the reply. Nothing was sent."
            )
        if allowed.left == 0:
            raise ConflictError(
                "the follower's customer-service window is spent (5 messages since they last "
                "wrote): wait for their next message. Nothing was sent."
            )
        body: dict[str, Any] = {"msgtype": "text", "text": {"content": text}}
        if agent.kf_account:
            body["customservice"] = {"kf_account": agent.kf_account}
        sent = sum(1 for m in app.store.agents.messages(session.id) if m.direction == "out")
        unit = outbox.enqueue_custom(app, session.account, session.openid, body,
                                     f"agent-session:{session.id}:{sent + 1}", lane="agent",
                                     source=f"agent-session:{session.id}")  # fmt: skip
        if unit is None:
            raise ConflictError(f"reply {sent + 1} of session {session_id} is enqueued already.")
        app.store.agents.add_message(session.id, at, "out", "text", mask(text), agent.name)
        app.store.agents.responded(session.id, at)
        app.store.messages.insert_out(OutboundRow(
            session.account, session.openid, "text", mask(text), "agent", "enqueued", None, at
        ))  # fmt: skip
        audit.record(app, "agent.reply", session.account, {"session": session.id, "unit": unit})
    try:
        outbox.send_now(app, session.account, f"agent-session:{session.id}")
    except Exception:  # the unit stays pending: every dispatcher sends it
        log.warning("reply %s of session %s left for the dispatchers", unit, session.id,
                    exc_info=True)  # fmt: skip
    return AgentReply(session.id, unit, allowed.left - 1)


def on_unsubscribe(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """UNSUBSCRIBE: the follower's session closes (``unsubscribed``) and its replies not yet
    sent are cancelled. Lets the engine's own handling go on; runs again harmlessly."""
    _end_on_event(app, runtime.account.name, inbound.openid, "unsubscribed")
    return None


def on_kf_close(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """kf_close_session: with ``kf_sessions mirror``, WeChat's agent client closed the session."""
    account = accounts.get(app, runtime.account.name)  # the store's, not the receiver's copy
    if _setting(account, "kf_sessions") == "mirror":
        _end_on_event(app, account.name, inbound.openid, "wechat")
    return None


def _end_on_event(app: AppContext, account: str, openid: str, reason: str) -> None:
    from bankwx_cli.domain import outbox

    with app.store.transaction():
        session = app.store.agents.live(account, openid)
        if session is None:
            return
        app.store.agents.close(session.id, reason, _now(app))
        cancelled = outbox.cancel_source(app, f"agent-session:{session.id}")
        audit.record(app, "agent.close", account, {"session": session.id, "reason": reason,
                                                    "cancelled_units": cancelled})  # fmt: skip


# --- WeChat's kf sessions, mirrored (kf_sessions mirror) ------------------------------------
#
# With ``kf_sessions mirror``, a session that opens with an agent holding a kf account opens a
# WeChat kf session too, and closes it when it ends: outbox units of the ``kfsession`` kind,
# enqueued in the transaction that opens or closes the session, sent by any dispatcher. Both
# calls are idempotent at WeChat (a second create for the same agent changes nothing; 65413 on
# close means it is closed already), so a unit caught mid-send is sent again.

KF_SESSION_PATHS = {
    "create": "/customservice/kfsession/create",
    "close": "/customservice/kfsession/close",
}
KF_NO_SESSION = 65413


def _mirror(app: AppContext, session: AgentSession, kf_account: str | None, action: str) -> None:
    """Enqueue the kf session's create or close (joins the caller's transaction)."""
    from bankwx_cli.domain import outbox

    if not kf_account:
        return
    account = accounts.get(app, session.account)
    if _setting(account, "kf_sessions") != "mirror":
        return
    outbox.enqueue(app, session.account, "kfsession",
                   {"action": action, "kf_account": kf_account, "openid": session.openid},
                   f"kfsession:{session.id}:{action}:{kf_account}", lane="agent",
                   openid=session.openid, source=f"agent-session:{session.id}")  # fmt: skip


def _kf_of(app: AppContext, session: AgentSession) -> str | None:
    agent = app.store.agents.get(session.account, session.agent) if session.agent else None
    return agent.kf_account if agent else None


def send_kfsession(app: AppContext, unit: OutboxUnit) -> str | None:
    """The outbox's sender of ``kfsession`` units."""
    body = unit.body
    path = KF_SESSION_PATHS[str(body.get("action"))]
    client = app.client(accounts.get(app, unit.account))
    try:
        client.post(path, {"kf_account": body.get("kf_account"), "openid": body.get("openid")})
    except WeChatError as exc:
        if body.get("action") != "close" or exc.errcode != KF_NO_SESSION:
            raise
    return None


# --- periodic work: assignment, timeouts, idle and expired sessions ---------------------------
#
# Every `bankwx serve` process runs ``tick`` every second (the registry's periodic point), and
# so does every agent console. Several at once are safe: each change is one conditional UPDATE
# in a short transaction of its own (the store decides), and each notice to a follower is an
# outbox unit keyed per session, enqueued in the transaction that makes the change.


def tick(app: AppContext) -> None:
    for account in app.store.agents.accounts_in_use():
        _time_out(app, account)
        _expire(app, account)  # before idle: a follower out of reach gets no idle notice
        _close_idle(app, account)
        _assign(app, account)


def _notify(app: AppContext, session: AgentSession, what: str, text: str) -> None:
    """A notice to the session's follower, if their window allows one (joins the caller's
    transaction); keyed per session and notice, so a second process enqueues nothing."""
    from bankwx_cli.domain import outbox

    if windows.allowance(app, session.account, session.openid).left <= 0:
        return
    outbox.enqueue_custom(app, session.account, session.openid,
                          {"msgtype": "text", "text": {"content": text}},
                          f"agent-{what}:{session.id}", lane="agent",
                          source=f"agent-session:{session.id}")  # fmt: skip


def _time_out(app: AppContext, account_name: str) -> None:
    now = _now(app)
    for session in app.store.agents.overdue(account_name, now):
        account = accounts.get(app, account_name)
        group = app.store.agents.group_by_id(session.group_id) if session.group_id else None
        text = (group.timeout_text if group else None) or _text_of(account, "agent_timeout")
        with app.store.transaction():
            if app.store.agents.close(session.id, "timeout", now):
                _notify(app, session, "timeout", text)


def _close_idle(app: AppContext, account_name: str) -> None:
    account = accounts.get(app, account_name)
    now = _now(app)
    for session in app.store.agents.idle(account_name, now, int(_setting(account, "idle_close"))):
        with app.store.transaction():
            if app.store.agents.close(session.id, "idle", now):
                _notify(app, session, "idle", _text_of(account, "agent_idle"))
                _ask_rating(app, session, now)
                _mirror(app, session, _kf_of(app, session), "close")


def _expire(app: AppContext, account_name: str) -> None:
    """Open sessions whose follower's window closed: nothing more can reach the follower."""
    for session in app.store.agents.open_sessions(account_name):
        if windows.allowance(app, session.account, session.openid).open:
            continue
        with app.store.transaction():
            app.store.agents.expire(session.id, _now(app))


def _assign(app: AppContext, account_name: str) -> None:
    """Give each waiting follower, longest waiting first, to an online agent of their group
    with room, picked by the group's policy."""
    waiting = app.store.agents.waiting(account_name, None, app.clock.now())
    if not waiting:
        return
    groups = {g.name: g for g in app.store.agents.groups(account_name)}
    agents_now = app.store.agents.all(account_name)
    for entry in waiting:
        group = groups.get(entry.group or "")
        if group is None:
            continue
        ready = [
            a
            for a in agents_now
            if group.name in a.groups and a.status == "online" and a.sessions < a.max_sessions
        ]
        if not ready:
            continue
        if group.policy == "least-busy":
            ready.sort(key=lambda a: (a.sessions, a.last_assigned_at or "", a.name))
        else:
            ready.sort(key=lambda a: (a.last_assigned_at or "", a.name))
        for agent in ready:
            now = _now(app)
            with app.store.transaction():
                taken = app.store.agents.take(agent, [group.id], entry.openid, now)
                if taken is not None:
                    audit.record(app, "agent.assign", account_name,
                                 {"session": taken.id, "agent": agent.name})  # fmt: skip
                    _mirror(app, taken, agent.kf_account, "create")
            if taken is not None:
                agents_now = [replace(a, sessions=a.sessions + 1, last_assigned_at=now)
                              if a.id == agent.id else a for a in agents_now]  # fmt: skip
                break


def _hand_over(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """``handover_after N``: the follower's Nth default reply in a row queues them for an agent
    instead (in the default group, when an agent of it is present). A message a rule answers
    resets the count. Runs in the receiver's writer unit."""
    from bankwx_cli.domain import keywords
    from bankwx_cli.domain.routing import Decision

    account = runtime.account
    after = int(_setting(account, "handover_after"))
    if after <= 0 or inbound.msg_type != "text":
        return None
    if keywords.first_match(runtime.rules, inbound.content or "", click=False) is not None:
        app.store.agents.reset_defaults(account.name, inbound.openid)
        return None
    if app.store.agents.count_default(account.name, inbound.openid) < after:
        return None
    app.store.agents.reset_defaults(account.name, inbound.openid)
    group = _talk_group(app, account, None)
    present = app.store.agents.available(group.id) if group else 0
    if group is None or present == 0:
        return None  # nobody to hand over to: the default reply stands
    reply = _queue(app, account, inbound.openid, group, present, "text", inbound.content or "")
    return Decision(reply, route="agent", outcome="handover")


def _parsed(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _me(app: AppContext, account: Account) -> Agent:
    found = app.store.agents.get(account.name, app.operator)
    if found is None:
        raise NotFoundError(
            f"you act as '{app.operator}', who is not an agent of account '{account.name}' "
            "(see bankwx agent list)."
        )
    return found


def take(app: AppContext, account_name: str | None, openid: str | None = None) -> AgentSession:
    """Take the longest-waiting follower of one's groups (or the one named). ConflictError
    when nobody waits or the agent is full; the store decides, so nobody is taken twice."""
    account = account_for(app, "agent.work", account_name)
    agent = _me(app, account)
    if agent.status in ("away", "offline"):
        raise ConflictError(
            f"you are {agent.status}: set your status first (bankwx agent status online)."
        )
    now = _now(app)
    with app.store.transaction():
        group_ids = [g.id for g in app.store.agents.groups(account.name) if g.name in agent.groups]
        taken = app.store.agents.take(agent, group_ids, openid, now)
        if taken is None:
            if app.store.agents.live_sessions(agent.id) >= agent.max_sessions:
                raise ConflictError(
                    f"you have {agent.max_sessions} open sessions, your maximum: close one first."
                )
            raise ConflictError(
                f"{openid} is not waiting in your groups." if openid else "nobody is waiting."
            )
        audit.record(app, "agent.take", account.name,
                     {"session": taken.id, "openid": taken.openid})  # fmt: skip
        _mirror(app, taken, agent.kf_account, "create")
    return _with_window(app, taken)


def _session_row(
    app: AppContext, permission: str, session_id: int, account_name: str | None
) -> AgentSession:
    from bankwx_cli.domain.permissions import load_row

    def load() -> AgentSession | None:
        if account_name is not None:
            accounts.get(app, account_name)  # an unknown account is named as such
        return app.store.agents.session(session_id)

    found: AgentSession = load_row(
        app,
        permission,
        load,
        lambda s: s.account,
        target=f"session {session_id}",
        missing=lambda: NotFoundError(f"no session {session_id} (see bankwx agent sessions)."),
        account=account_name,
    )
    return found


def close(app: AppContext, session_id: int, account_name: str | None = None) -> AgentSession:
    """Close a waiting or open session: one's own (agent.work) or anyone's (agent.supervise)."""
    session = _session_row(app, "agent.work", session_id, account_name)
    own = session.agent == app.operator
    if not own:
        session = _session_row(app, "agent.supervise", session_id, account_name)
    if not session.live:
        raise ConflictError(f"session {session_id} is {session.state} already.")
    now = _now(app)
    with app.store.transaction():
        if not app.store.agents.close(session.id, "agent" if own else "supervisor", now):
            raise ConflictError(f"session {session_id} was closed meanwhile.")
        if session.state == "open":
            _ask_rating(app, session, now)
            _mirror(app, session, _kf_of(app, session), "close")
        audit.record(app, "agent.close", session.account,
                     {"session": session.id, "openid": session.openid})  # fmt: skip
    closed = app.store.agents.session(session.id)
    assert closed is not None  # noqa: S101 - just updated
    return closed


def transfer(
    app: AppContext, session_id: int, to: str, account_name: str | None = None
) -> AgentSession:
    """Hand a session to another agent (present, with room) or back to a group's queue: one's
    own (agent.work) or anyone's (agent.supervise)."""
    session = _session_row(app, "agent.work", session_id, account_name)
    if session.agent != app.operator:
        session = _session_row(app, "agent.supervise", session_id, account_name)
    if not session.live:
        raise ConflictError(f"session {session_id} is {session.state}: it cannot be transferred.")
    agent = app.store.agents.get(session.account, to)
    group = app.store.agents.group(session.account, to)
    if agent is None and group is None:
        raise NotFoundError(
            f"'{to}' is neither an agent nor an agent group of account '{session.account}' "
            "(bankwx agent list, bankwx agent group list)."
        )
    now = _now(app)
    with app.store.transaction():
        if agent is not None:
            if agent.name == session.agent:
                raise ConflictError(f"session {session_id} is served by '{to}' already.")
            if agent.status not in ("online", "busy"):
                raise ConflictError(f"agent '{to}' is {agent.status}: choose a present agent.")
            if not app.store.agents.hand_to_agent(session.id, agent, now):
                raise ConflictError(
                    f"agent '{to}' has {agent.max_sessions} open sessions, their maximum."
                )
            if session.state == "open":
                _mirror(app, session, _kf_of(app, session), "close")
            _mirror(app, session, agent.kf_account, "create")
        elif group is not None:
            if not app.store.agents.hand_to_group(session.id, group.id):
                raise ConflictError(f"session {session_id} was closed meanwhile.")
            if session.state == "open":
                _mirror(app, session, _kf_of(app, session), "close")
        audit.record(app, "agent.transfer", session.account,
                     {"session": session.id, "from": session.agent, "to": to,
                      "kind": "agent" if agent is not None else "group"})  # fmt: skip
    moved = app.store.agents.session(session.id)
    assert moved is not None  # noqa: S101 - just updated
    return _with_window(app, moved)


def queue(app: AppContext, account_name: str | None, group: str | None = None) -> list[QueueEntry]:
    """Who waits, longest first, with their place in their group's queue."""
    account = account_for(app, "agent.read", account_name)
    group_id = _group_of(app, account.name, group).id if group else None
    return app.store.agents.waiting(account.name, group_id, app.clock.now())


def sessions(
    app: AppContext,
    account_name: str | None,
    everyone: bool = False,
    state: str | None = None,
    since: str | None = None,
) -> list[AgentSession]:
    """One's own sessions (agent.work), or every agent's (--all: agent.supervise)."""
    account = account_for(app, "agent.supervise" if everyone else "agent.work", account_name)
    if state is not None and state not in SESSION_STATES:
        raise ValidationError(f"--state must be one of {', '.join(SESSION_STATES)}.")
    since_iso = iso(parse_user_time(since, "--since")) if since else None
    agent_id = None if everyone else _me(app, account).id
    return [_with_window(app, s) for s in app.store.agents.sessions(account.name, agent_id, state,
                                                                     since_iso)]  # fmt: skip


def _with_window(app: AppContext, session: AgentSession) -> AgentSession:
    """The session with its follower's window and its unknown units (live sessions)."""
    unknown = app.store.agents.unknown_units(session.id)
    if not session.live:
        return replace(session, unknown_units=unknown)
    allowed = windows.allowance(app, session.account, session.openid)
    return replace(session, window_expires_at=allowed.expires_at, messages_left=allowed.left,
                   unknown_units=unknown)  # fmt: skip


def transcript(
    app: AppContext, session_id: int, after: int = 0, account_name: str | None = None
) -> list[SessionMessage]:
    """A session's transcript lines after line ``after`` (the agent console polls it): one's
    own session (agent.work) or anyone's (agent.supervise)."""
    session = _session_row(app, "agent.work", session_id, account_name)
    if session.agent != app.operator:
        _session_row(app, "agent.supervise", session_id, account_name)
    return app.store.agents.messages(session_id, after)


# --- the area's declarations ----------------------------------------------------------------


def _wechat_id(value: str) -> str:
    if not WECHAT_ID_RE.fullmatch(value):
        raise ValueError("not a WeChat id")
    return value


def _group_exists(app: AppContext, account: Account, value: Any) -> None:
    if value and app.store.agents.group(account.name, str(value)) is None:
        raise ValidationError(
            f"no agent group named '{value}' on account '{account.name}': add it first "
            "(bankwx agent group add)."
        )


def _words(value: list[str]) -> list[str]:
    words = [w.strip() for w in value if w.strip()]
    if not words or any(len(w) > 32 for w in words):
        raise ValueError("need 1 or more words of at most 32 characters")
    return words


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py): the talk_to_agent action, the
    follower-state lookup of waiting and served followers, the per-account settings."""
    registry.action(
        "talk_to_agent",
        "Queue the follower for one of bankwx's agents (the group, else default_group).",
        arg="group",
        default="",
        validate=validate_talk,
    )(talk_to_agent)
    registry.follower_lookup(agent_lookup, candidates=agent_candidates)
    registry.on_event("unsubscribe", on_unsubscribe)
    registry.on_event("kf_close_session", on_kf_close)
    registry.periodic("agents", tick, every_s=1.0)
    registry.sender("kfsession", budget="/customservice/kfsession", crash="idempotent",
                    rate=50)(send_kfsession)  # fmt: skip
    for setting in (
        Setting("wechat_id", "str", "", "The account's WeChat id (微信号), the part after @ of "
                "its agents' kf accounts.", "agents",
                "a WeChat id: a letter, then up to 29 letters, digits, - or _", _wechat_id),
        Setting("default_group", "str", "", "The agent group that talk_to_agent queues "
                "followers in when a rule names none.", "agents",
                "the name of one of the account's agent groups", None, check=_group_exists),
        Setting("handover_after", "int", 0, "Queue a follower for an agent after this many "
                "default replies in a row (0: never).", "agents",
                "a whole number from 0 to 100", int_range(0, 100)),
        Setting("idle_close", "int", 600, "Seconds without a message after which an open "
                "session closes (idle).", "agents",
                "a whole number of seconds from 1 to 86400", int_range(1, 86_400)),
        Setting("kf_sessions", "str", "off", "Mirror sessions as WeChat kf sessions "
                "(kfsession/create|close): off or mirror.", "agents",
                "one of off, mirror", choice(("off", "mirror"))),
        Setting("end_words", "list", ["结束人工"], "What a follower writes to end a wait or a "
                "session.", "agents",
                "words, comma-separated or a JSON array", _words),
        Setting("rating_valid", "int", 3600, "Seconds after a session closes during which the "
                "follower's rating is taken.", "agents",
                "a whole number of seconds from 60 to 604800", int_range(60, 604_800)),
        Setting(TEST_PAUSE, "int", 0, "Test only (BANKWX_TEST_ACTIONS=1): seconds "
                "talk_to_agent waits after queueing, before the outcome is written.", "agents",
                "a whole number of seconds from 0 to 60", int_range(0, 60), test_only=True),
    ):  # fmt: skip
        registry.setting(setting)

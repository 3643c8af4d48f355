"""`bankwx agent ...`: agents and their groups, WeChat kf accounts, status."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from bankwx_cli.commands._cli import (
    MAX_INT,
    AccountOption,
    DryRunOption,
    FormatOption,
    YesOption,
    get_cli,
)
from bankwx_cli.domain import agents
from bankwx_cli.domain.agents import AgentSpec, GroupSpec
from bankwx_cli.errors import DIFFERENCES, ValidationError
from bankwx_cli.models.agents import AgentChange

app = typer.Typer(
    help="Agents: agents and groups, their WeChat kf accounts, status.",
    no_args_is_help=True,
)
group_app = typer.Typer(
    help="Agent groups: the queues followers wait in, and how their agents are picked.",
    no_args_is_help=True,
)
app.add_typer(group_app, name="group")

SESSION_COLUMNS = ["id", "openid", "agent", "group", "state", "entered_at", "opened_at",
                   "closed_at", "close_reason", "first_response_s", "messages_left"]  # fmt: skip
QUEUE_COLUMNS = ["position", "session", "openid", "group", "entered_at", "waiting_s"]
AGENT_COLUMNS = ["name", "groups", "status", "sessions", "max_sessions", "kf_account", "nickname"]
GROUP_COLUMNS = ["name", "policy", "queue_timeout", "sla", "agents", "waiting"]
DRIFT_COLUMNS = ["kf_account", "agent", "problem", "store_nickname", "wechat_nickname", "repair"]


class Policy(StrEnum):
    round_robin = "round-robin"
    least_busy = "least-busy"


class Status(StrEnum):
    online = "online"
    busy = "busy"
    away = "away"
    offline = "offline"


NameArgument = Annotated[str, typer.Argument(help="The agent: an operator's name.")]
GroupArgument = Annotated[str, typer.Argument(help="The group's name.")]
GroupsOption = Annotated[
    str | None,
    typer.Option("--groups", help="Groups the agent serves, comma-separated (G1,G2)."),
]
MaxSessionsOption = Annotated[
    int | None,
    typer.Option("--max-sessions", min=1, max=100, help="Open sessions at most (default 5)."),
]
KfAccountOption = Annotated[
    str | None,
    typer.Option(
        "--kf-account",
        help="WeChat kf account PREFIX@WECHATID (WECHATID: the account's wechat_id setting).",
    ),
]
NicknameOption = Annotated[
    str | None,
    typer.Option("--nickname", help="What followers see as the agent (16 characters at most)."),
]
PolicyOption = Annotated[
    Policy | None,
    typer.Option("--policy", help="How an agent is picked: round-robin (default) or least-busy."),
]
QueueTimeoutOption = Annotated[
    int | None,
    typer.Option("--queue-timeout", min=10, max=86_400,
                 help="Seconds a follower waits before the timeout text (default 300)."),
]  # fmt: skip
SlaOption = Annotated[
    int | None,
    typer.Option("--sla", min=5, max=3_600, help="First-response target, seconds (default 60)."),
]
AwayTextOption = Annotated[
    str | None,
    typer.Option("--away-text", help="Answer when no agent of the group is online or busy."),
]
TimeoutTextOption = Annotated[
    str | None,
    typer.Option("--timeout-text", help="Sent to a follower whose wait timed out."),
]


def _groups(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    return tuple(g.strip() for g in raw.split(",") if g.strip())


def _spec(
    groups: str | None, max_sessions: int | None, kf_account: str | None, nickname: str | None
) -> AgentSpec:
    return AgentSpec(_groups(groups), max_sessions, kf_account, nickname)


def _change(ctx: typer.Context, change: AgentChange, fmt: FormatOption, done: bool) -> None:
    get_cli(ctx).render_one(change, fmt=fmt, say=change.headline(done=done))


@app.command(
    epilog="Examples:\n\n  bankwx agent add zhang --groups retail --kf-account zhang@bankwx "
    "--nickname 小张\n\n  bankwx agent add li --groups retail,cards --max-sessions 8 --dry-run"
)
def add(
    ctx: typer.Context,
    name: NameArgument,
    groups: GroupsOption = None,
    max_sessions: MaxSessionsOption = None,
    kf_account: KfAccountOption = None,
    nickname: NicknameOption = None,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Make an operator an agent of the account (WeChat's kf account first, then the store).

    The operator's role must allow agent.work (the agent or supervisor role)."""
    cli = get_cli(ctx)
    spec = _spec(groups, max_sessions, kf_account, nickname)
    if dry_run:
        _change(ctx, agents.plan_add(cli.app, cli.with_account(account), name, spec), fmt, False)
        return
    _change(ctx, agents.add(cli.app, cli.with_account(account), name, spec), fmt, True)


@app.command(
    epilog="Examples:\n\n  bankwx agent update zhang --max-sessions 8\n\n"
    "  bankwx agent update zhang --nickname 张经理 --dry-run"
)
def update(
    ctx: typer.Context,
    name: NameArgument,
    groups: GroupsOption = None,
    max_sessions: MaxSessionsOption = None,
    kf_account: KfAccountOption = None,
    nickname: NicknameOption = None,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Change an agent's groups, maximum sessions, kf account or nickname.

    --groups replaces the agent's groups. A new kf account is added on WeChat before the old
    one is deleted."""
    cli = get_cli(ctx)
    spec = _spec(groups, max_sessions, kf_account, nickname)
    if dry_run:
        plan = agents.plan_update(cli.app, cli.with_account(account), name, spec)
        _change(ctx, plan, fmt, False)
        return
    _change(ctx, agents.update(cli.app, cli.with_account(account), name, spec), fmt, True)


@app.command(epilog="Examples:\n\n  bankwx agent remove zhang --yes")
def remove(
    ctx: typer.Context,
    name: NameArgument,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Remove an agent with no open session (its kf account is deleted on WeChat)."""
    cli = get_cli(ctx)
    plan = agents.plan_remove(cli.app, cli.with_account(account), name)
    if dry_run:
        _change(ctx, plan, fmt, False)
        return
    cli.confirm(f"Remove agent '{name}' from account '{plan.account}'?", yes=yes)
    _change(ctx, agents.remove(cli.app, plan.account, name), fmt, True)


@app.command("list", epilog="Examples:\n\n  bankwx agent list\n\n  bankwx agent list --format json")
def list_(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """List the account's agents: groups, status, open sessions against their maximum."""
    cli = get_cli(ctx)
    rows = agents.list_(cli.app, cli.with_account(account))
    cli.render(rows, fmt=fmt, columns=AGENT_COLUMNS, empty="No agents.")


@app.command(
    epilog="Examples:\n\n  bankwx agent status online\n\n"
    "  bankwx agent status away --agent zhang   # a supervisor"
)
def status(
    ctx: typer.Context,
    state: Annotated[
        Status, typer.Argument(metavar="STATUS", help="online, busy, away or offline.")
    ],
    agent: Annotated[
        str | None, typer.Option("--agent", help="Another agent (needs agent.supervise).")
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Set your status (or another agent's): busy takes no new followers; away and offline
    are absent."""
    cli = get_cli(ctx)
    found = agents.set_status(cli.app, cli.with_account(account), state.value, agent)
    cli.render_one(found, fmt=fmt, say=f"Agent '{found.name}' is {found.status}.")


@app.command(epilog="Examples:\n\n  bankwx agent sync --dry-run\n\n  bankwx agent sync")
def sync(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Compare the agents' kf accounts with WeChat's and repair the differences.

    A kf account that WeChat has and the store lacks is shown, never deleted. Exits 5 with
    --dry-run when something differs."""
    cli = get_cli(ctx)
    drift = agents.sync(cli.app, cli.with_account(account), dry_run)
    cli.render(drift, fmt=fmt, columns=DRIFT_COLUMNS, empty="WeChat's kf accounts match.")
    if drift and dry_run:
        raise typer.Exit(DIFFERENCES)


class State(StrEnum):
    waiting = "waiting"
    open = "open"
    closed = "closed"
    expired = "expired"


@app.command(
    epilog="Examples:\n\n  bankwx agent take\n\n  bankwx agent take o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
)
def take(
    ctx: typer.Context,
    openid: Annotated[
        str | None, typer.Argument(help="This follower (default: the longest waiting).")
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Take a waiting follower of your groups: the longest waiting, or the one named.

    Exits 1 when nobody waits or you are at your maximum of open sessions."""
    cli = get_cli(ctx)
    session = agents.take(cli.app, cli.with_account(account), openid)
    cli.render_one(session, fmt=fmt, say=f"Session {session.id}: you serve {session.openid}.")


@app.command(epilog="Examples:\n\n  bankwx agent reply 42 '您好，请问有什么可以帮您？'")
def reply(
    ctx: typer.Context,
    session: Annotated[
        int, typer.Argument(metavar="SESSION", min=1, max=MAX_INT, help="Your open session's id.")
    ],
    text: Annotated[str, typer.Argument(help="What the follower receives (2048 bytes at most).")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Reply to the follower of your open session, as your kf account.

    Refused (exit 1, nothing sent) when the follower's customer-service window is closed or
    spent: WeChat allows 5 messages within 48 hours of the follower's last message."""
    cli = get_cli(ctx)
    sent = agents.reply(cli.app, session, text, cli.with_account(account))
    cli.render_one(
        sent, fmt=fmt,
        say=f"Reply enqueued (unit {sent.unit}); {sent.messages_left} more allowed in the window.",
    )  # fmt: skip


@app.command(
    epilog="Examples:\n\n  bankwx agent transfer 42 --to li\n\n"
    "  bankwx agent transfer 42 --to cards"
)
def transfer(
    ctx: typer.Context,
    session: Annotated[
        int, typer.Argument(metavar="SESSION", min=1, max=MAX_INT, help="The session's id.")
    ],
    to: Annotated[str, typer.Option("--to", help="An agent (present, with room) or a group.")],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Hand a session to another agent, or back to a group's queue."""
    cli = get_cli(ctx)
    moved = agents.transfer(cli.app, session, to, cli.with_account(account))
    cli.render_one(moved, fmt=fmt, say=f"Session {moved.id} is now {moved.state} "
                   f"({moved.agent or moved.group}).")  # fmt: skip


@app.command(epilog="Examples:\n\n  bankwx agent close 42")
def close(
    ctx: typer.Context,
    session: Annotated[
        int, typer.Argument(metavar="SESSION", min=1, max=MAX_INT, help="The session's id.")
    ],
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Close a session: your own, or anyone's with agent.supervise."""
    cli = get_cli(ctx)
    closed = agents.close(cli.app, session, cli.with_account(account))
    cli.render_one(closed, fmt=fmt, say=f"Closed session {closed.id}.")


@app.command(
    "queue", epilog="Examples:\n\n  bankwx agent queue\n\n  bankwx agent queue --group retail"
)
def queue_(
    ctx: typer.Context,
    group: Annotated[str | None, typer.Option("--group", help="Only this group.")] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Who is waiting for an agent, longest waiting first, with their place in their group."""
    cli = get_cli(ctx)
    rows = agents.queue(cli.app, cli.with_account(account), group)
    cli.render(rows, fmt=fmt, columns=QUEUE_COLUMNS, empty="Nobody is waiting.")


@app.command(
    epilog="Examples:\n\n  bankwx agent sessions\n\n"
    "  bankwx agent sessions --all --state open --format json"
)
def sessions(
    ctx: typer.Context,
    everyone: Annotated[
        bool, typer.Option("--all", help="Every agent's sessions (needs agent.supervise).")
    ] = False,
    state: Annotated[
        State | None, typer.Option("--state", help="Only sessions in this state.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only sessions entered since (ISO 8601).")
    ] = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Your sessions (or, with --all, every agent's), oldest first."""
    cli = get_cli(ctx)
    rows = agents.sessions(
        cli.app, cli.with_account(account), everyone, state.value if state else None, since
    )
    cli.render(rows, fmt=fmt, columns=SESSION_COLUMNS, empty="No sessions.")


@group_app.command(
    "add",
    epilog="Examples:\n\n  bankwx agent group add retail --policy least-busy --sla 45 "
    "--away-text '坐席暂时不在，请稍后再试'",
)
def group_add(
    ctx: typer.Context,
    name: GroupArgument,
    policy: PolicyOption = None,
    queue_timeout: QueueTimeoutOption = None,
    sla: SlaOption = None,
    away_text: AwayTextOption = None,
    timeout_text: TimeoutTextOption = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Add an agent group to the account."""
    cli = get_cli(ctx)
    spec = GroupSpec(policy.value if policy else None, queue_timeout, sla, away_text, timeout_text)
    found = agents.add_group(cli.app, cli.with_account(account), name, spec)
    cli.render_one(found, fmt=fmt, say=f"Added agent group '{found.name}' to '{found.account}'.")


@group_app.command("list", epilog="Examples:\n\n  bankwx agent group list --format json")
def group_list(ctx: typer.Context, account: AccountOption = None, fmt: FormatOption = None) -> None:
    """List the account's agent groups: policy, timeouts, agents, followers waiting."""
    cli = get_cli(ctx)
    rows = agents.list_groups(cli.app, cli.with_account(account))
    cli.render(rows, fmt=fmt, columns=GROUP_COLUMNS, empty="No agent groups.")


@group_app.command("update", epilog="Examples:\n\n  bankwx agent group update retail --sla 30")
def group_update(
    ctx: typer.Context,
    name: GroupArgument,
    policy: PolicyOption = None,
    queue_timeout: QueueTimeoutOption = None,
    sla: SlaOption = None,
    away_text: AwayTextOption = None,
    timeout_text: TimeoutTextOption = None,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Change an agent group's policy, timeouts or texts."""
    cli = get_cli(ctx)
    spec = GroupSpec(policy.value if policy else None, queue_timeout, sla, away_text, timeout_text)
    found = agents.update_group(cli.app, cli.with_account(account), name, spec)
    cli.render_one(found, fmt=fmt, say=f"Updated agent group '{found.name}'.")


@group_app.command("remove", epilog="Examples:\n\n  bankwx agent group remove cards --yes")
def group_remove(
    ctx: typer.Context,
    name: GroupArgument,
    yes: YesOption = False,
    account: AccountOption = None,
    fmt: FormatOption = None,
) -> None:
    """Remove an agent group nobody waits in and nothing names (default_group, rules)."""
    cli = get_cli(ctx)
    cli.confirm(f"Remove agent group '{name}'?", yes=yes)
    found = agents.remove_group(cli.app, cli.with_account(account), name)
    cli.render_one(found, fmt=fmt, say=f"Removed agent group '{found.name}'.")


@app.command(epilog="Examples:\n\n  bankwx agent console\n\n  bankwx agent console --account main")
def console(ctx: typer.Context, account: AccountOption = None) -> None:
    """Open the agent console: the queue, your sessions and the selected conversation, live.

    F2 takes, F3 transfers, F4 closes, F5 changes your status, Enter sends a reply; while you
    type, the follower sees WeChat's typing indicator. Needs a terminal."""
    cli = get_cli(ctx)
    name = cli.with_account(account)
    agents.sessions(cli.app, name, state="open")  # an agent of the account (else exit 1, 4)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):  # not BANKWX_INTERACTIVE: a screen
        raise ValidationError("agent console needs a terminal: it is a full-screen program.")
    from bankwx_cli.commands import agent_console  # Textual: imported by this command alone

    agent_console.run(cli.app, name)

"""A test-only area: one of each extension point, used only with ``BANKWX_TEST_ACTIONS=1``.

Black-box tests drive these through ``bankwx serve`` (one worker and several) to show that
every entry point fills the registries the same way. Nothing here is for operators:
``bankwx keyword actions`` lists these actions only when test actions are enabled.

- actions: ``sleep`` (exercises the deadline; its validator bounds the seconds), ``echo``
  (an optional argument; answers with what its context carries), ``needs_preview`` (its
  validator refuses a rule whose account has no ``preview_openids`` setting) and
  ``trial_secret`` (sensitive: its reply is never stored or logged in clear);
- two hooks on the SCAN event: the first records the scene as the follower's state and lets
  routing go on, the second answers with what the first recorded;
- a follower-state lookup: a follower whose recorded scene is ``trial-agent`` has every
  message taken ("talking to an agent"), ``trial-queue`` has it taken silently (success);
- a late-answer hook that records the late message's id in the follower's state;
- a route: ``GET /trial/{name}`` (the account's name and type as JSON; 404 when unknown);
- an outbox kind: ``test_note`` (a customer-service text, at most once, 5 a second);
- an account setting: ``test.service_only`` (a bool that only service accounts may use).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from bankwx_cli.domain import account_settings
from bankwx_cli.domain.account_settings import Setting
from bankwx_cli.errors import NotFoundError, ValidationError
from bankwx_cli.extensions import ErrorMap, Request, Response
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.replies import Reply, TextReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.actions import ActionContext
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.extensions import Registry
    from bankwx_cli.models.outbox import OutboxUnit as Unit
    from bankwx_cli.wechat.callback import Inbound

SECRET_REPLY = "测试余额：8,848.86元（SENSITIVE-TRIAL-7f3a9c）"
AGENT_SCENE = "trial-agent"
QUEUE_SCENE = "trial-queue"


# --- actions ----------------------------------------------------------------------------------


def _seconds(app: AppContext, account: Account, arg: str | None) -> None:
    try:
        seconds = float(arg or "")
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 60:
        raise ValidationError(f"--arg '{arg}' is invalid for sleep: seconds from 0 to 60.")


def sleep(ctx: ActionContext) -> Reply:
    seconds = float(ctx.arg or 0)
    time.sleep(seconds)
    return TextReply(f"处理完成（用时{seconds:g}秒）：{ctx.text}")


def echo(ctx: ActionContext) -> Reply:
    where = ctx.location
    parts = [
        f"arg={ctx.arg}",
        f"type={ctx.msg_type}",
        f"msgid={ctx.msg_id}",
        f"left_ok={0 < ctx.time_left() <= 5}",
        f"location={where.latitude:g},{where.longitude:g}" if where else "location=none",
        f"settings={','.join(sorted(ctx.settings))}",
        f"text={ctx.text}",
    ]
    return TextReply(" ".join(parts))


def _has_preview(app: AppContext, account: Account, arg: str | None) -> None:
    if not account_settings.value(account, "preview_openids"):
        raise ValidationError(
            f"action 'needs_preview' needs the account '{account.name}' to have preview "
            "openids (bankwx account update --preview-openids)."
        )


def needs_preview(ctx: ActionContext) -> Reply:
    return TextReply(f"预览粉丝{len(ctx.settings['preview_openids'])}位")


def trial_secret(ctx: ActionContext) -> Reply:
    return TextReply(SECRET_REPLY)


# --- engine hooks -----------------------------------------------------------------------------


def scan_first(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """Record the scene as the follower's state; routing goes on."""
    if inbound.scene.startswith("trial"):
        app.store.follower_state.set_scene(runtime.account.name, inbound.openid, inbound.scene)
    return None


def scan_second(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """Answer with what the first hook recorded."""
    from bankwx_cli.domain.routing import Decision

    if not inbound.scene.startswith("trial"):
        return None
    state = app.store.follower_state.get(runtime.account.name, inbound.openid)
    scene = state.scene if state else None
    return Decision(TextReply(f"第二个钩子看到：{scene}"), route="trial:scan")


def agent_lookup(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """Inside the writer unit: is this follower 'talking to an agent'?"""
    from bankwx_cli.domain.routing import Decision

    scene = app.store.follower_state.scene(runtime.account.name, inbound.openid)
    if scene == AGENT_SCENE:
        return Decision(TextReply(f"坐席（测试）已收到：{inbound.content}"), route="trial:agent",
                        outcome="forwarded")  # fmt: skip
    if scene == QUEUE_SCENE:
        return Decision(None, route="trial:agent", outcome="queued")
    return None


def agent_candidates(app: AppContext, account: Account, openids: list[str]) -> set[str]:
    """Once per group commit: which of the group's followers ``agent_lookup`` may take."""
    return app.store.follower_state.in_scenes(account.name, openids, (AGENT_SCENE, QUEUE_SCENE))


def late_note(
    app: AppContext, runtime: Runtime, inbound: Inbound, message_id: int, decision: Decision
) -> str | None:
    """Inside the transaction recording a late answer: note it in the follower's state."""
    app.store.follower_state.set_scene(runtime.account.name, inbound.openid, f"late:{message_id}")
    return None


# --- a route ----------------------------------------------------------------------------------


async def account_route(request: Request) -> Response:
    name = request.params["name"]
    account: Account | None = await request.host.run(request.host.app.store.accounts.get, name)
    if account is None:
        raise NotFoundError(f"no account named '{name}'")
    body = json.dumps({"name": account.name, "type": account.type}).encode()
    return Response(200, body, b"application/json")


# --- an outbox kind, and an account setting ---------------------------------------------------


def send_test_note(app: AppContext, unit: Unit) -> str | None:
    """A customer-service text, to see a declared kind sent."""
    from bankwx_cli.domain import accounts

    body = {"touser": unit.openid, "msgtype": "text", "text": {"content": unit.body["text"]}}
    client = app.client(accounts.get(app, unit.account))
    answer = client.post("/cgi-bin/message/custom/send", body, False)
    msgid = answer.get("msgid") or answer.get("msg_id")
    return None if msgid is None else str(msgid)


SERVICE_ONLY = Setting(
    "test.service_only",
    "bool",
    False,
    "Test only (BANKWX_TEST_ACTIONS=1): a setting that only service accounts may use.",
    "test",
    "true or false",
    account_types=("service",),
)


def install(registry: Registry) -> None:
    registry.action(
        "sleep",
        "Test only (BANKWX_TEST_ACTIONS=1): wait, then answer; exercises the deadline.",
        arg="seconds to wait, 0 to 60",
        validate=_seconds,
    )(sleep)
    registry.action(
        "echo",
        "Test only: answer with what the action's context carries.",
        arg="a prefix",
        default="回声",
    )(echo)
    registry.action(
        "needs_preview",
        "Test only: refused unless the account has preview openids.",
        validate=_has_preview,
    )(needs_preview)
    registry.action("trial_secret", "Test only: a sensitive reply.", sensitive=True)(trial_secret)
    registry.on_event("scan", scan_first)
    registry.on_event("scan", scan_second)
    registry.follower_lookup(agent_lookup, candidates=agent_candidates)
    registry.on_late(late_note)
    registry.route(
        "GET",
        "/trial/{name}",
        account_route,
        max_body=0,
        errors=[ErrorMap(NotFoundError, 404, b"no such account", "unknown_account")],
    )
    registry.sender("test_note", budget="test_note", crash="at_most_once", rate=5)(send_test_note)
    registry.setting(SERVICE_ONLY)

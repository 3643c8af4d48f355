"""Menus as code: validate, plan, deploy, pull, history, rollback, delete, maker-checker.

A menu file (see `menu_files`) is checked, compared with the menu live on WeChat and deployed:
menu/create for the default menu, then menu/delconditional and menu/addconditional for the
conditional menus (WeChat has no edit API for them, so a change removes the live ones and adds
the file's, in file order). Every deploy is a numbered version in the store (content, hash,
operator, time, WeChat's answers) written before the first call and finished after the last,
so that history says what is live even after a failure half-way or a crash.

With approval required for menus (``account update NAME --require-approval menus``), a deploy
becomes a pending version; another operator with ``menu.approve`` approves it (which deploys
it) or rejects it. A rollback restores a version that was live before, and so was approved.
"""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bankwx_cli.clock import iso
from bankwx_cli.domain import account_settings, accounts, actions, audit
from bankwx_cli.domain.menu_files import (
    Change,
    Issue,
    MenuSpec,
    ValidationReport,
    diff,
    load_menu_file,
    parse_menu_data,
    validate,
)
from bankwx_cli.domain.permissions import deny_own_approval, require
from bankwx_cli.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    WeChatError,
)
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.menus import MenuCall, MenuVersion, PulledMenu
from bankwx_cli.models.menus import MenuOutcome as MenuOutcome  # re-exported for commands

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.wechat.client import WeChatClient

NO_MENU = 46003  # menu/get: "menu no exist", an empty menu for us
NO_SUCH_MENUID = 65301  # delconditional: already gone
APPROVAL_AREA = "menus"  # the account setting require_approval lists the areas
DEPLOY_STARTED = "deploy started; if this stays, run bankwx menu plan"
CLIENT_CACHE_NOTE = "Followers see the new menu within about five minutes (the client's cache)."

CREATE = "/cgi-bin/menu/create"
GET = "/cgi-bin/menu/get"
DELETE = "/cgi-bin/menu/delete"
ADD_CONDITIONAL = "/cgi-bin/menu/addconditional"
DEL_CONDITIONAL = "/cgi-bin/menu/delconditional"

# Where the tag ids of conditional menus are checked against: the registry's tag sources
# (bankwx_cli/extensions.py). The followers area registers one returning an account's synced
# tag ids (None when its tags were never synced); with none synced the tag_id warning is skipped.


class MenuInvalidError(ValidationError):
    """A menu that WeChat would refuse; the message lists every error with path and limit."""

    def __init__(self, source: str, report: ValidationReport, listed: bool = False) -> None:
        self.report = report
        n = len(report.errors)
        errors = f"{n} error" if n == 1 else f"{n} errors"
        if listed:
            text = f"{source} is invalid: {errors} (listed above); WeChat would refuse it."
        else:
            lines = [f"{source} is invalid; WeChat would refuse it ({errors}):"]
            lines += [f"  {issue.path}: {issue.message} (limit: {issue.limit})" for issue in
                      report.errors]  # fmt: skip
            lines.append("Nothing was sent to WeChat. Check the file with bankwx menu validate.")
            text = "\n".join(lines)
        super().__init__(text)


# --- Models ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MenuCheck:
    """A validated menu file: its spec and the report (errors and warnings)."""

    source: str
    account: str | None
    spec: MenuSpec
    report: ValidationReport

    def rows(self) -> list[dict[str, str]]:
        return [
            {"level": level, "path": i.path, "message": i.message, "limit": i.limit}
            for level, issues in (("error", self.report.errors), ("warning", self.report.warnings))
            for i in issues
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "account": self.account,
            "valid": self.report.ok,
            "errors": [_issue(i) for i in self.report.errors],
            "warnings": [_issue(i) for i in self.report.warnings],
            "hash": self.spec.content_hash(),
        }

    def raise_for_errors(self) -> None:
        """Raise MenuInvalidError (exit 1) when WeChat would refuse the menu."""
        if not self.report.ok:
            raise MenuInvalidError(self.source, self.report, listed=True)


@dataclass(frozen=True)
class LiveMenu:
    """The menu on WeChat now (None: no menu) and the menuids of its conditional menus."""

    spec: MenuSpec | None
    conditional_menuids: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.spec is None:
            return "no menu"
        n, m = len(self.spec.buttons), len(self.spec.conditional_menus)
        text = f"{n} button" + ("" if n == 1 else "s")
        if m:
            text += f" and {m} conditional menu" + ("" if m == 1 else "s")
        return text


@dataclass(frozen=True)
class MenuPlan:
    """What deploying ``wanted`` over the live menu changes; computing it changes nothing."""

    account: str
    source: str
    wanted: MenuSpec
    live: LiveMenu
    changes: list[Change]
    warnings: list[Issue]
    live_version: int | None = None  # the recorded version that is live, if one is
    recorded_state: str | None = None  # that version's state (live, partial, unknown)
    drifted_from: int | None = None  # the menu was changed outside bankwx after this version
    needs_approval: bool = False
    version: int | None = None  # the stored version being approved
    rollback_of: int | None = None

    @property
    def is_empty(self) -> bool:
        """True when the live menu already is the wanted one."""
        live = self.live.spec
        return live is not None and live.content_hash() == self.wanted.content_hash()

    def rows(self) -> list[dict[str, str]]:
        return [{"kind": c.kind, "path": c.path, "summary": c.summary} for c in self.changes]

    def headline(self) -> str:
        live = "live menu"
        if self.live.spec is None:
            live = "no live menu"
        elif self.live_version and self.recorded_state != "live":
            live = f"live menu (version {self.live_version}, {self.recorded_state})"
        elif self.live_version:
            live = f"live menu (version {self.live_version})"
        elif self.drifted_from:
            live = f"live menu (changed outside bankwx since version {self.drifted_from})"
        n = len(self.changes)
        return f"Menu plan for '{self.account}': {live} -> {self.source}: {n} change" + (
            "" if n == 1 else "s"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "source": self.source,
            "live_menu": self.live.spec is not None,
            "live_version": self.live_version,
            "drifted_from": self.drifted_from,
            "changes": len(self.changes),
            "diff": self.rows(),
            "warnings": [_issue(i) for i in self.warnings],
            "hash": self.wanted.content_hash(),
            "needs_approval": self.needs_approval,
        }


@dataclass(frozen=True)
class DeployResult:
    """The outcome of a deploy, an approval or a rollback: a version and its state."""

    account: str
    version: int
    state: str  # pending (awaiting approval) or live
    note: str = ""


def _issue(issue: Issue) -> dict[str, str]:
    return {"path": issue.path, "message": issue.message, "limit": issue.limit}


def version_spec(found: MenuVersion) -> MenuSpec:
    """A recorded version's menu, parsed."""
    return parse_menu_data(found.content, source=f"menu version {found.version}")


# --- Access ----------------------------------------------------------------------------------


def _account(app: AppContext, permission: str, name: str | None) -> Account:
    """Check the permission (before any lookup), then resolve the account."""
    require(app, permission, name)
    account = accounts.resolve(app, name)
    if name is None:
        require(app, permission, account.name)  # operators limited to some accounts
    return account


def _require_operator(app: AppContext, name: str | None) -> None:
    """Any operator in the store (and allowed on the account) may read menus."""
    operator = app.store.operators.get(app.operator)
    if operator is not None and (
        name is None or operator.accounts is None or name in operator.accounts
    ):
        return
    require(app, "menu.read", name)  # refuses, and audits the refusal


def _reader_account(app: AppContext, name: str | None) -> Account:
    _require_operator(app, name)
    account = accounts.resolve(app, name)
    if name is None:
        _require_operator(app, account.name)
    return account


def approval_required(account: Account) -> bool:
    """True when the account's menus need a second operator's approval."""
    areas = account_settings.value(account, "require_approval")
    return isinstance(areas, list) and APPROVAL_AREA in areas


# --- Validate ---------------------------------------------------------------------------------


def handled_click_keys(app: AppContext, account: str) -> set[str]:
    """CLICK keys that a keyword rule answers (a reply, or an action that exists)."""
    keys: set[str] = set()
    for rule in app.store.keyword_rules.for_account(account):
        if rule.match != "click":
            continue
        if rule.reply is not None or actions.find(app, rule.action) is not None:
            keys.add(rule.pattern)
    return keys


def known_tag_ids(app: AppContext, account: str) -> AbstractSet[str] | None:
    """The account's synced tag ids, or None when no tags were synced (the tag sources)."""
    from bankwx_cli import extensions

    found: set[str] | None = None
    for source in extensions.registry().tag_sources(extensions.tests_enabled(app)):
        ids = source(app, account)
        if ids is not None:
            found = (found or set()) | set(ids)
    return found


def _check(app: AppContext, spec: MenuSpec, account: str | None) -> ValidationReport:
    if account is None:
        return validate(spec)
    return validate(
        spec,
        known_click_keys=handled_click_keys(app, account),
        known_tag_ids=known_tag_ids(app, account),
    )


def check_file(app: AppContext, name: str | None, file: Path) -> MenuCheck:
    """Validate a menu file against WeChat's limits and bankwx's advice; no call to WeChat.

    With an account (named, or the store's only one) the advice includes CLICK keys that no
    keyword rule answers and unknown tag ids. Raises NotFoundError / ValidationError for a
    file that cannot be read as a menu; an invalid menu is a report, see `raise_for_errors`.
    """
    _require_operator(app, name)
    account: str | None = name
    if name is None and len(app.store.accounts.names()) == 1:
        account = app.store.accounts.names()[0]
    elif name is not None:
        accounts.get(app, name)
    spec = load_menu_file(file)
    return MenuCheck(str(file), account, spec, _check(app, spec, account))


def _valid(app: AppContext, spec: MenuSpec, source: str, account: str) -> ValidationReport:
    report = _check(app, spec, account)
    if not report.ok:
        raise MenuInvalidError(source, report)
    return report


# --- Live menu --------------------------------------------------------------------------------


def fetch_live(client: WeChatClient) -> LiveMenu:
    """The menu on WeChat (menu/get); 46003 is no menu. Raises WeChatError."""
    try:
        answer = client.get(GET)
    except WeChatError as exc:
        if exc.errcode == NO_MENU:
            return LiveMenu(None)
        raise
    data = {k: v for k, v in answer.items() if k in ("menu", "conditionalmenu")}
    if not data.get("menu"):
        return LiveMenu(None)
    raw = data.get("conditionalmenu") or []
    menuids = tuple(str(c.get("menuid", "")) for c in raw if isinstance(c, dict))
    return LiveMenu(parse_menu_data(data, source="WeChat's menu/get answer"), menuids)


def _plan(
    app: AppContext,
    account: Account,
    spec: MenuSpec,
    source: str,
    *,
    version: int | None = None,
    rollback_of: int | None = None,
) -> MenuPlan:
    report = _valid(app, spec, source, account.name)
    live = fetch_live(app.client(account))
    current = app.store.menu_versions.current(account.name)
    live_version = drifted_from = state = None
    if current is not None and live.spec is not None:
        # A partial or unknown deploy is what is live even where it differs from its content.
        if current.state != "live" or live.spec.content_hash() == current.hash:
            live_version, state = current.version, current.state
        else:
            drifted_from = current.version
    return MenuPlan(
        account=account.name,
        source=source,
        wanted=spec.normalized(),
        live=live,
        changes=diff(live.spec, spec),
        warnings=report.warnings,
        live_version=live_version,
        recorded_state=state,
        drifted_from=drifted_from,
        needs_approval=approval_required(account) and version is None and rollback_of is None,
        version=version,
        rollback_of=rollback_of,
    )


def plan(app: AppContext, name: str | None, file: Path) -> MenuPlan:
    """Compare a menu file with the live menu. Any operator may. An invalid file raises
    MenuInvalidError before any call to WeChat; WeChat's errors raise WeChatError."""
    account = _reader_account(app, name)
    return _plan(app, account, load_menu_file(file), str(file))


def plan_deploy(app: AppContext, name: str | None, file: Path) -> MenuPlan:
    """`plan` for a deploy: also checks ``menu.deploy`` first (PermissionDenied)."""
    account = _account(app, "menu.deploy", name)
    return _plan(app, account, load_menu_file(file), str(file))


def pull(app: AppContext, name: str | None, output: Path | None = None) -> PulledMenu:
    """The live menu in menu/get's shape without menuids. NotFoundError when there is none.

    With ``output`` (where it will be written), the path is checked first, before WeChat is
    called: ValidationError when its folder is missing or it is a directory.
    """
    account = _reader_account(app, name)
    if output is not None:
        check_output(output)
    live = fetch_live(app.client(account))
    if live.spec is None:
        raise NotFoundError(f"account '{account.name}' has no menu on WeChat; nothing to pull.")
    return PulledMenu(account.name, live.spec.to_get_shape())


def history(app: AppContext, name: str | None, limit: int | None = None) -> list[MenuVersion]:
    """The account's menu versions, newest first."""
    account = _reader_account(app, name)
    return app.store.menu_versions.all(account.name, limit)


def _stored(app: AppContext, account: str, version: int) -> MenuVersion:
    found = app.store.menu_versions.get(account, version)
    if found is None:
        raise NotFoundError(
            f"no menu version {version} for account '{account}'. See bankwx menu history."
        )
    return found


# --- Deploy, approve, reject, rollback -------------------------------------------------------


def deploy(app: AppContext, plan: MenuPlan) -> DeployResult:
    """Deploy a planned file, or submit it for approval when the account requires approval.

    A submission records a pending version and changes nothing on WeChat. A deploy records the
    version, calls WeChat and writes the audit log; a failure half-way is recorded with what is
    live now (history says the same) and raised as WeChatError with that statement.
    """
    account = _account(app, "menu.deploy", plan.account)
    if plan.needs_approval:
        return _submit(app, account, plan)
    return _push(app, account, plan, "menu.deploy")


def _submit(app: AppContext, account: Account, plan: MenuPlan) -> DeployResult:
    now = iso(app.clock.now())
    note = "awaiting approval by another operator"
    with app.store.transaction():
        number = app.store.menu_versions.add(
            account=account.name,
            state="pending",
            content=plan.wanted.to_get_shape(),
            hash=plan.wanted.content_hash(),
            source=plan.source,
            created_by=app.operator,
            at=now,
            note=note,
        )
        audit.record(
            app,
            "menu.submit",
            account.name,
            {"version": number, "hash": plan.wanted.content_hash(), "source": plan.source,
             "changes": len(plan.changes)},
        )  # fmt: skip
    return DeployResult(account.name, number, "pending", note)


def _pending(app: AppContext, account: str, version: int) -> MenuVersion:
    found = _stored(app, account, version)
    if found.state != "pending":
        raise ConflictError(
            f"menu version {version} of '{account}' is {found.state}, not pending; only pending "
            "versions are approved or rejected. See bankwx menu history."
        )
    return found


def plan_approve(app: AppContext, name: str | None, version: int) -> MenuPlan:
    """The plan of approving a pending version (menu.approve; not the submitter's own).

    Raises NotFoundError, ConflictError (not pending), errors.OwnApprovalDenied (exit 4,
    audited).
    """
    account = _account(app, "menu.approve", name)
    found = _pending(app, account.name, version)
    if found.created_by == app.operator:
        _deny_own(app, account.name, version)
    return _plan(app, account, version_spec(found), f"version {version}", version=version)


def _deny_own(app: AppContext, account: str, version: int) -> None:
    deny_own_approval(
        app,
        "menu.approve",
        account,
        {"version": version, "reason": "own submission"},
        f"operator '{app.operator}' submitted menu version {version} and cannot approve it; "
        "another operator must (maker-checker).",
    )


def approve(app: AppContext, plan: MenuPlan) -> DeployResult:
    """Approve a pending version and deploy it (see `deploy` for failures)."""
    account = _account(app, "menu.approve", plan.account)
    if plan.version is None:
        raise ValidationError("this plan is not for a pending version.")
    found = _pending(app, account.name, plan.version)
    if found.created_by == app.operator:
        _deny_own(app, account.name, plan.version)
    return _push(app, account, plan, "menu.approve")


def reject(app: AppContext, name: str | None, version: int, reason: str | None) -> MenuVersion:
    """Reject a pending version; nothing changes on WeChat. Raises NotFoundError,
    ConflictError (not pending)."""
    account = _account(app, "menu.reject", name)
    now = iso(app.clock.now())
    with app.store.transaction():
        _pending(app, account.name, version)
        note = f"rejected by {app.operator}" + (f": {reason}" if reason else "")
        app.store.menu_versions.decide(
            account.name,
            version,
            state="rejected",
            by=app.operator,
            at=now,
            note=note,
            reason=reason,
        )
        audit.record(app, "menu.reject", account.name, {"version": version, "reason": reason})
    return _stored(app, account.name, version)


def plan_rollback(app: AppContext, name: str | None, version: int | None) -> MenuPlan:
    """The plan of restoring a version that was live before (default: the one before the live
    one; with no live menu, the last one deployed). Raises NotFoundError, ConflictError."""
    account = _account(app, "menu.rollback", name)
    store = app.store.menu_versions
    if version is None:
        current = store.current(account.name)
        found = store.last_deployed(
            account.name,
            before=current.version if current else None,
            other_than_hash=current.hash if current else None,
        )
        if found is None:
            raise NotFoundError(
                f"account '{account.name}' has no earlier deployed menu version to roll back "
                "to. See bankwx menu history."
            )
        target = found
    else:
        target = _stored(app, account.name, version)
        if target.deployed_at is None:
            raise ConflictError(
                f"menu version {version} of '{account.name}' was never deployed ({target.state});"
                " a rollback restores a version that was live. Deploy its file instead."
            )
    source = f"rollback to version {target.version}"
    return _plan(app, account, version_spec(target), source, rollback_of=target.version)


def rollback(app: AppContext, plan: MenuPlan) -> DeployResult:
    """Deploy a rollback plan as a new version (see `deploy` for failures)."""
    account = _account(app, "menu.rollback", plan.account)
    return _push(app, account, plan, "menu.rollback")


def _push(app: AppContext, account: Account, plan: MenuPlan, action: str) -> DeployResult:
    """Record the version, call WeChat, record the outcome and the audit row."""
    wanted = plan.wanted
    store = app.store.menu_versions
    started = iso(app.clock.now())
    with app.store.transaction():
        if plan.version is None:
            number = store.add(
                account=account.name,
                state="deploying",
                content=wanted.to_get_shape(),
                hash=wanted.content_hash(),
                source=plan.source,
                created_by=app.operator,
                at=started,
                note=DEPLOY_STARTED,
                rollback_of=plan.rollback_of,
            )
        else:
            number = plan.version
            _pending(app, account.name, number)  # another approver may have been quicker
            store.decide(
                account.name,
                number,
                state="deploying",
                by=app.operator,
                at=started,
                note=DEPLOY_STARTED,
            )
    client = app.client(account)
    steps: list[MenuCall] = []
    failure, where = _send(client, plan, steps)
    state, note = "live", ""
    if failure is not None:
        state, note = _after_failure(client, plan)
        if state == "live":
            failure = None  # the answer was lost, but all of it is live: a success
    now = iso(app.clock.now())
    changed = state != "failed"
    with app.store.transaction():
        store.finish(
            account.name,
            number,
            state=state,
            deployed_by=app.operator if changed else None,
            deployed_at=now if changed else None,
            wechat_answer=steps,
            note=note,
            at=now,
        )
        if changed:
            store.retire_current(account.name, "superseded", now, keep=number)
            app.store.bump_config_version()  # the receiver counts clicks by menu version
        params: dict[str, Any] = {
            "version": number,
            "hash": wanted.content_hash(),
            "source": plan.source,
            "changes": len(plan.changes),
            "state": state,
        }
        if note:
            params["live"] = note
        audit.record(app, action, account.name, params, outcome="ok" if failure is None else state)
    if failure is not None:
        explanation = f"{failure.explanation}. " if failure.explanation else ""
        raise type(failure)(
            failure.errcode,
            failure.errmsg,
            f"{explanation}Menu version {number} stopped at {where}. {note}. "
            f"Recorded as '{state}' in bankwx menu history.",
            failure.body,
        )
    return DeployResult(account.name, number, "live", note)


def _send(
    client: WeChatClient, plan: MenuPlan, steps: list[MenuCall]
) -> tuple[WeChatError | None, str]:
    """Make the calls; returns the error that stopped them (None: all done) and where."""
    wanted, live = plan.wanted, plan.live.spec
    where = "menu/create"
    try:
        if live is None or live.buttons != wanted.buttons:
            steps.append(MenuCall(CREATE, client.post(CREATE, wanted.to_create_body())))
        old = [c.to_body() for c in live.conditional_menus] if live is not None else []
        if old == [c.to_body() for c in wanted.conditional_menus]:
            return None, ""
        for i, menuid in enumerate(plan.live.conditional_menuids):
            where = f"removing the live conditionalmenu[{i}] (menu/delconditional)"
            try:
                answer = client.post(DEL_CONDITIONAL, {"menuid": menuid})
            except WeChatError as exc:
                if exc.errcode != NO_SUCH_MENUID:
                    raise
                answer = {"errcode": exc.errcode, "errmsg": exc.errmsg}
            steps.append(MenuCall(DEL_CONDITIONAL, {"menuid": menuid, **answer}))
        for i, menu in enumerate(wanted.conditional_menus):
            where = f"conditionalmenu[{i}] (menu/addconditional)"
            # Not idempotent: a retry after a lost answer would add the menu twice.
            answer = client.post(ADD_CONDITIONAL, menu.to_body(), idempotent=False)
            steps.append(MenuCall(ADD_CONDITIONAL, {"matchrule": dict(menu.matchrule), **answer}))
    except WeChatError as exc:
        steps.append(MenuCall(where, {"errcode": exc.errcode, "errmsg": exc.errmsg}))
        return exc, where
    return None, ""


def _after_failure(client: WeChatClient, plan: MenuPlan) -> tuple[str, str]:
    """(state, statement of what is live now), from the live menu read back."""
    try:
        after = fetch_live(client).spec
    except (WeChatError, ValidationError) as exc:
        code = f"WeChat {exc.errcode}" if isinstance(exc, WeChatError) else "not a menu"
        return "unknown", (
            f"Could not read the live menu back ({code}); what is live is unknown: "
            "run bankwx menu plan with the file to see it"
        )
    return describe_live(plan.live.spec, plan.wanted, after, plan.live_version)


def describe_live(
    before: MenuSpec | None, wanted: MenuSpec, after: MenuSpec | None, before_version: int | None
) -> tuple[str, str]:
    """(state, statement) for a deploy that stopped: failed (nothing changed), live (all of
    it is live after all) or partial (the statement says which parts)."""
    previous = f"version {before_version}" if before_version else "the menu live before"
    if after is None:
        if before is None:
            return "failed", "Nothing changed: no menu is live, as before"
        return "partial", "Live now: no menu at all"
    if after.content_hash() == wanted.content_hash():
        return "live", "Live now: all of this version (WeChat applied it despite the error)"
    if before is not None and after.content_hash() == before.content_hash():
        return "failed", f"Nothing changed: {previous} is still live"
    if after.buttons == wanted.buttons:
        parts = ["the new default menu"]
    elif before is not None and after.buttons == before.buttons:
        parts = [f"the default menu of {previous}"]
    else:
        parts = ["a default menu of neither version"]
    bodies = [c.to_body() for c in wanted.conditional_menus]
    new = sum(1 for c in after.conditional_menus if c.to_body() in bodies)
    old = len(after.conditional_menus) - new
    if bodies:
        parts.append(f"{new} of its {len(bodies)} conditional menus")
    if old:
        parts.append(f"{old} conditional menu(s) of {previous}")
    if not bodies and not old:
        parts.append("no conditional menu")
    return "partial", "Live now: " + ", ".join(parts)


# --- Delete ---------------------------------------------------------------------------------


def plan_delete(app: AppContext, name: str | None) -> tuple[str, LiveMenu]:
    """(account, live menu) before a delete; checks ``menu.delete`` first."""
    account = _account(app, "menu.delete", name)
    return account.name, fetch_live(app.client(account))


def delete(app: AppContext, name: str | None) -> LiveMenu:
    """Delete the live menu, conditional menus included (menu/delete); returns what was live.

    The live version in history becomes 'removed'. Raises WeChatError.
    """
    account = _account(app, "menu.delete", name)
    client = app.client(account)
    live = fetch_live(client)
    if live.spec is None:
        return live
    client.get(DELETE)
    now = iso(app.clock.now())
    with app.store.transaction():
        current = app.store.menu_versions.current(account.name)
        app.store.menu_versions.retire_current(
            account.name, "removed", now, note=f"menu deleted by {app.operator} at {now}"
        )
        app.store.bump_config_version()
        audit.record(
            app,
            "menu.delete",
            account.name,
            {"version": current.version if current else None, "removed": live.describe()},
        )
    return live


def dump(menu: PulledMenu, path: Path | None) -> str:
    """A pulled menu as file text: YAML for a .yaml/.yml path, JSON otherwise."""
    data = menu.to_json()
    if path is not None and path.suffix.lower() in (".yaml", ".yml"):
        return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def check_output(path: Path) -> None:
    """Refuse (ValidationError, naming it) an output path in a missing folder, a folder that
    is not one, or a path that is a directory."""
    folder = path.parent
    if path.is_dir():
        raise ValidationError(
            f"--output '{path}' is a directory: give a file name, e.g. {path / 'menu.yaml'}."
        )
    if not folder.exists():
        raise ValidationError(
            f"--output '{path}': there is no folder '{folder}'. Create it first or write "
            "somewhere else."
        )
    if not folder.is_dir():
        raise ValidationError(f"--output '{path}': '{folder}' is not a folder.")


def write(menu: PulledMenu, path: Path) -> None:
    """Write a pulled menu to a file (see `dump`); ValidationError when it cannot be written."""
    check_output(path)
    try:
        path.write_text(dump(menu, path), encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot write '{path}': {exc.strerror or exc}.") from None

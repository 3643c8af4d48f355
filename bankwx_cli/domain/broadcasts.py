"""Broadcasts: audiences, maker-checker approval, scheduling, crash-safe sending, results.

A broadcast is sent through the outbox's broadcast lane. Its units have idempotency keys
derived from the broadcast, so expanding it again after a crash adds nothing, and the outbox
sends each unit once (template units carry our client_msg_id, mass jobs our clientmsgid).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bankwx_cli.clock import BANK_TZ, bank_time, iso
from bankwx_cli.domain import account_settings, accounts, audit, outbox
from bankwx_cli.domain.permissions import (
    deny_own_approval,
    load_row,
    require,
    visible_accounts,
)
from bankwx_cli.domain.template_fields import check_values
from bankwx_cli.domain.templates import template_for
from bankwx_cli.errors import (
    BankwxError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.batches import BatchFailure, BatchReport, Progress, no_progress
from bankwx_cli.models.broadcasts import (
    Audience,
    AudienceFilter,
    Broadcast,
    BroadcastContent,
    BroadcastPreview,
    BroadcastStatus,
    BroadcastUpdate,
    MassJob,
    MediaContent,
    TemplateContent,
    TextContent,
)
from bankwx_cli.models.outbox import UnitCounts, UnitFilter

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.extensions import Registry
    from bankwx_cli.wechat.callback import Inbound

log = logging.getLogger(__name__)

CONTENT_KINDS = ("text", "image", "news", "template")
AUDIENCE_KINDS = ("all", "tag", "openids", "filter")
MASS_LIMIT = 10_000
MONTHLY_ALLOWANCE = 4
EXPAND_BATCH = 2000
FILTER_KEYS = ("scene", "since", "until", "tag")
TERMINAL = ("sent", "failed", "unknown", "cancelled")
RETRY_HORIZON_S = 30.0  # a send waits for retries due this soon; later ones hand it back
INTERNAL_RETRY_S = 300.0


# --- content and audience ------------------------------------------------------------------------


def parse_data(text: str) -> dict[str, dict[str, str]]:
    """Template data: JSON text, or @FILE. Values become {"value": str}."""
    raw = text
    if text.startswith("@"):
        try:
            raw = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(
                f"cannot read --data file '{text[1:]}': {exc.strerror}."
            ) from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"--data is not valid JSON: {exc.msg} at line {exc.lineno}."
        ) from None
    if not isinstance(data, dict):
        raise ValidationError('--data must be a JSON object: {"field": {"value": "..."}}.')
    clean: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            clean[key] = {"value": value["value"]}
        elif isinstance(value, str):
            clean[key] = {"value": value}
        else:
            raise ValidationError(f"--data field '{key}' needs a text value.")
    return clean


def parse_filter(expr: str) -> dict[str, str]:
    """A filter on the synced followers: ``scene=ADD_SCENE_QR_CODE,since=2026-01-01,tag=VIP``."""
    result: dict[str, str] = {}
    for part in expr.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in FILTER_KEYS or not value:
            raise ValidationError(
                f"--filter '{expr}' is invalid: use KEY=VALUE pairs separated by commas, with "
                f"keys {', '.join(FILTER_KEYS)} (e.g. scene=ADD_SCENE_QR_CODE,since=2026-01-01)."
            )
        result[key] = value
    return result


def read_openids(path: Path) -> list[str]:
    """The openids of a list file (the followers' list reader: one a line, blank lines and #
    comments skipped, bad lines named), de-duplicated and sorted."""
    from bankwx_cli.domain.followers import read_openid_list

    return sorted(set(read_openid_list(str(path))))


def batches(openids: list[str], size: int = MASS_LIMIT) -> list[list[str]]:
    """Batches of 2 to size openids: no batch of one (the last two are balanced)."""
    if len(openids) < 2:
        raise ValidationError(
            "a mass send to a list needs at least two followers (WeChat refuses one: 40130)."
        )
    chunks = [openids[i : i + size] for i in range(0, len(openids), size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        merged = chunks[-2] + chunks[-1]
        half = len(merged) // 2
        chunks[-2:] = [merged[:half], merged[half:]]
    return chunks


def _mass_content(content: BroadcastContent) -> dict[str, Any]:
    if isinstance(content, TextContent):
        return {"msgtype": "text", "text": {"content": content.text}}
    if isinstance(content, TemplateContent):
        raise ValueError("a template broadcast is not a mass message")
    if content.kind == "image":
        return {
            "msgtype": "image",
            "images": {
                "media_ids": [content.media_id],
                "recommend": "",
                "need_open_comment": 0,
                "only_fans_can_comment": 0,
            },
        }
    return {
        "msgtype": "mpnews",
        "mpnews": {"media_id": content.media_id},
        "send_ignore_reprint": 0,
    }


def _hash(content: BroadcastContent, audience: Audience, scheduled_at: str | None) -> str:
    payload = json.dumps(
        [content.kind, content.to_json(), audience.kind, audience.to_json(), scheduled_at],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def tag_id(app: AppContext, account: str, name: str) -> int:
    """The WeChat id of a synced tag, by name or id."""
    found = app.store.tags.by_name(account, name)
    if found is None and name.isdigit():
        found = next((t for t in app.store.tags.all(account) if t.tag_id == int(name)), None)
    if found is None:
        raise NotFoundError(f"no tag named '{name}' for {account}. See bankwx tag list.")
    return found.tag_id


def audience_openids(app: AppContext, b: Broadcast) -> list[str]:
    """The broadcast's recipients among the synced followers (or its stored list)."""
    audience = b.audience
    if audience.kind == "openids":
        return app.store.broadcasts.openids(b.id)
    if audience.kind == "all":
        return app.store.broadcasts.audience(b.account, AudienceFilter())
    if audience.kind == "tag":
        return app.store.broadcasts.audience(b.account, AudienceFilter(tag_id=audience.tag_id))

    def when(key: str, value: str | None) -> str | None:
        if not value:
            return None
        from bankwx_cli.clock import parse_user_time

        return iso(parse_user_time(value, f"--filter {key}"))

    conditions = AudienceFilter(
        tag_id=tag_id(app, b.account, audience.tag) if audience.tag else None,
        scene=audience.scene or None,
        since=when("since", audience.since),
        until=when("until", audience.until),
    )
    return app.store.broadcasts.audience(b.account, conditions)


# --- lifecycle ---------------------------------------------------------------------------------


def _missing(broadcast_id: int) -> NotFoundError:
    return NotFoundError(f"no broadcast {broadcast_id}. See bankwx broadcast list.")


def _get(app: AppContext, broadcast_id: int) -> Broadcast:
    """A broadcast by id, unchecked: for rows already checked by `_load` (or made here)."""
    b = app.store.broadcasts.get(broadcast_id)
    if b is None:
        raise _missing(broadcast_id)
    return b


def _load(app: AppContext, permission: str, broadcast_id: int, account: str | None) -> Broadcast:
    """The broadcast an id names, with permission checked on the broadcast's own account.

    Call before the change's transaction (a refusal is audited in its own); inside it, read the
    row again with `_get` for its current state. A named account that is not the broadcast's is
    not found, as before; an account the operator may not use is refused (exit 4).
    """
    return load_row(
        app,
        permission,
        lambda: app.store.broadcasts.get(broadcast_id),
        lambda b: b.account,
        target=f"broadcast {broadcast_id}",
        missing=lambda: _missing(broadcast_id),
        account=account,
    )


def _now(app: AppContext) -> str:
    return iso(app.clock.now())


def _content(
    app: AppContext,
    acct: Account,
    text: str | None,
    image: str | None,
    news: str | None,
    template: str | None,
    data: str | None,
) -> BroadcastContent:
    given = [
        (k, v)
        for k, v in (("text", text), ("image", image), ("news", news), ("template", template))
        if v is not None
    ]
    if len(given) != 1:
        raise ValidationError("give one content: --text, --image, --news or --template.")
    kind, value = given[0]
    if kind == "text":
        if not value.strip():
            raise ValidationError("--text is empty.")
        return TextContent(value)
    if kind in ("image", "news"):
        return MediaContent(kind, value)
    if data is None:
        raise ValidationError("--template needs --data (JSON, or @FILE).")
    fields = parse_data(data)
    tpl = template_for(app, acct, value)
    problems = check_values(tpl.fields, {k: v["value"] for k, v in fields.items()})
    if problems:
        raise ValidationError(
            f"template '{value}' {'; '.join(problems)} (see bankwx template show {value})."
        )
    return TemplateContent(value, fields, tpl.title)


def _audience(
    app: AppContext,
    acct: Account,
    content: BroadcastContent,
    to_all: bool,
    tag: str | None,
    openids_file: Path | None,
    filter_expr: str | None,
) -> tuple[Audience, list[str]]:
    """The audience, and the openids of a listed one."""
    given = [
        k
        for k, v in (
            ("all", to_all or None),
            ("tag", tag),
            ("openids", openids_file),
            ("filter", filter_expr),
        )
        if v
    ]
    if len(given) != 1:
        raise ValidationError("give one audience: --to-all, --tag, --openids or --filter.")
    if tag:
        return Audience("tag", tag=tag, tag_id=tag_id(app, acct.name, tag)), []
    if openids_file is not None:
        listed = read_openids(openids_file)
        if not listed:
            raise ValidationError(f"the openid list '{openids_file}' is empty.")
        if len(listed) < 2 and content.kind != "template":
            raise ValidationError(
                f"the openid list '{openids_file}' names one follower ({listed[0]}): a mass "
                "send to a list needs at least two different openids (WeChat refuses one: "
                "40130). Add another, or send a template or a preview to one follower."
            )
        return Audience("openids", file=str(openids_file), count=len(listed)), listed
    if filter_expr:
        conditions = parse_filter(filter_expr)
        if "tag" in conditions:
            tag_id(app, acct.name, conditions["tag"])  # refuse an unknown tag now
        return Audience.from_json("filter", conditions), []
    return Audience("all"), []


def _scheduled(app: AppContext, at: datetime) -> str:
    if at <= app.clock.now():
        raise ValidationError(f"--at {bank_time(at)} is in the past.")
    return iso(at)


def create(
    app: AppContext,
    account: str | None,
    *,
    text: str | None = None,
    image: str | None = None,
    news: str | None = None,
    template: str | None = None,
    data: str | None = None,
    to_all: bool = False,
    tag: str | None = None,
    openids_file: Path | None = None,
    filter_expr: str | None = None,
    at: datetime | None = None,
    title: str | None = None,
) -> Broadcast:
    """Create a draft broadcast. Raises ValidationError for bad content, audience or time."""
    require(app, "broadcast.create", account)
    acct = accounts.resolve(app, account)
    content = _content(app, acct, text, image, news, template, data)
    audience, listed = _audience(app, acct, content, to_all, tag, openids_file, filter_expr)
    scheduled = None if at is None else _scheduled(app, at)
    now = _now(app)
    draft = Broadcast(
        id=0,
        account=acct.name,
        title=title or "",
        content=content,
        audience=audience,
        scheduled_at=scheduled,
        state="draft",
        content_hash=_hash(content, audience, scheduled),
        created_by=app.operator,
        created_at=now,
        updated_at=now,
    )
    with app.store.transaction():
        broadcast_id = app.store.broadcasts.insert(draft)
        if listed:
            app.store.broadcasts.add_openids(broadcast_id, listed)
        b = _get(app, broadcast_id)
        size = len(listed) if listed else len(audience_openids(app, b))
        if size == 0 and not (audience.kind == "all" and content.kind != "template"):
            raise ValidationError(
                "the audience is empty: no synced follower matches. Run bankwx follower sync, "
                "or check the tag or filter."
            )
        app.store.broadcasts.update(broadcast_id, BroadcastUpdate(audience_size=size))
        audit.record(
            app,
            "broadcast.create",
            str(broadcast_id),
            {
                "account": acct.name,
                "content_kind": content.kind,
                "audience_kind": audience.kind,
                "audience": audience.to_json(),
                "scheduled_at": scheduled,
                "size": size,
            },
        )
    return describe(app, _get(app, broadcast_id))


def edit(
    app: AppContext,
    broadcast_id: int,
    *,
    text: str | None = None,
    at: datetime | None = None,
    title: str | None = None,
    account: str | None = None,
) -> Broadcast:
    """Change a broadcast not yet sending; an approved or submitted one goes back to draft."""
    _load(app, "broadcast.create", broadcast_id, account)
    with app.store.transaction():
        b = _get(app, broadcast_id)
        if b.state not in ("draft", "submitted", "approved", "rejected"):
            raise ConflictError(f"broadcast {broadcast_id} is {b.state}; it can't be edited.")
        if b.started_at:  # approved again after an attempt: part of it may have gone out
            raise ConflictError(
                f"broadcast {broadcast_id} has begun sending (it waits for its next attempt); "
                f"it can't be edited. Cancel it (bankwx broadcast cancel {broadcast_id}) and "
                "create another."
            )
        content = b.content
        if text is not None:
            if not isinstance(content, TextContent):
                raise ValidationError("--text edits text broadcasts only.")
            content = TextContent(text)
        scheduled = b.scheduled_at if at is None else _scheduled(app, at)
        app.store.broadcasts.update(
            broadcast_id,
            BroadcastUpdate(
                content=content,
                scheduled_at=scheduled,
                title=title if title is not None else b.title,
                content_hash=_hash(content, b.audience, scheduled),
                state="draft",
                approved_by=None,
                approved_at=None,
                approved_hash=None,
                updated_at=_now(app),
            ),
        )
        audit.record(
            app,
            "broadcast.edit",
            str(broadcast_id),
            {"was": b.state, "text": text is not None, "at": scheduled},
        )
    return describe(app, _get(app, broadcast_id))


def _move(
    app: AppContext,
    broadcast_id: int,
    states: tuple[str, ...],
    refusal: str,
    to: str,
    change: Callable[[Broadcast], tuple[BroadcastUpdate, Mapping[str, object]]] = (
        lambda b: (BroadcastUpdate(), {})
    ),
) -> None:
    """One step of the approval flow, in one transaction: from one of ``states`` to ``to``
    (submitted, approved, rejected), stamped with who and when, audited as broadcast.<step>.
    ``change`` gives the step's own fields and audit parameters from the current row."""
    step = {"submitted": "submit", "approved": "approve", "rejected": "reject"}[to]
    with app.store.transaction():
        b = _get(app, broadcast_id)
        if b.state not in states:
            raise ConflictError(f"broadcast {broadcast_id} is {b.state}; {refusal}.")
        values, params = change(b)
        now = _now(app)
        values = replace(values, state=to, updated_at=now)
        if to == "submitted":
            values = replace(values, submitted_by=app.operator, submitted_at=now)
        elif to == "approved":
            values = replace(values, approved_by=app.operator, approved_at=now)
        else:
            values = replace(values, rejected_by=app.operator, rejected_at=now)
        app.store.broadcasts.update(broadcast_id, values)
        audit.record(app, f"broadcast.{step}", str(broadcast_id), dict(params))


def submit(app: AppContext, broadcast_id: int, account: str | None = None) -> Broadcast:
    _load(app, "broadcast.submit", broadcast_id, account)
    _move(app, broadcast_id, ("draft", "rejected"), "only drafts are submitted", "submitted")
    return describe(app, _get(app, broadcast_id), with_estimate=True)


def approve(app: AppContext, broadcast_id: int, account: str | None = None) -> Broadcast:
    """Approve a submitted broadcast. The author never approves their own."""
    b = _load(app, "broadcast.approve", broadcast_id, account)
    if b.created_by == app.operator:
        deny_own_approval(
            app,
            "broadcast.approve",
            str(broadcast_id),
            {"reason": "author may not approve", "account": b.account},
            f"'{app.operator}' created broadcast {broadcast_id} and may not approve it: "
            "another approver must (maker-checker).",
        )
    _move(
        app,
        broadcast_id,
        ("submitted",),
        "only submitted ones are approved",
        "approved",
        lambda b: (BroadcastUpdate(approved_hash=b.content_hash), {"hash": b.content_hash}),
    )
    return describe(app, _get(app, broadcast_id), with_estimate=True)


def reject(
    app: AppContext, broadcast_id: int, reason: str, account: str | None = None
) -> Broadcast:
    _load(app, "broadcast.reject", broadcast_id, account)
    if not reason.strip():
        raise ValidationError("--reason is empty: say why, for the author.")
    _move(
        app,
        broadcast_id,
        ("submitted",),
        "only submitted ones are rejected",
        "rejected",
        lambda b: (BroadcastUpdate(reject_reason=reason), {"reason": reason}),
    )
    return describe(app, _get(app, broadcast_id))


def cancel(app: AppContext, broadcast_id: int, account: str | None = None) -> Broadcast:
    """Cancel, also mid-send: units not yet sent are not sent. Units a dead send held (killed,
    interrupted) are handed back and cancelled; a live dispatcher's sends under way end as
    WeChat answers them."""
    _load(app, "broadcast.cancel", broadcast_id, account)
    with app.store.transaction():
        b = _get(app, broadcast_id)
        if b.state in ("sent", "partly_failed", "failed", "cancelled"):
            raise ConflictError(f"broadcast {broadcast_id} is {b.state}; nothing to cancel.")
        app.store.broadcasts.update(
            broadcast_id,
            BroadcastUpdate(
                state="cancelled",
                cancelled_by=app.operator,
                cancelled_at=_now(app),
                updated_at=_now(app),
            ),
        )
        # what a killed or interrupted send still held goes back first (by each kind's crash
        # policy), so that it is cancelled with the rest and no unit stays 'sending'
        handed_back = outbox.recover(app)
        stopped = outbox.cancel_source(app, b.source)
        audit.record(
            app,
            "broadcast.cancel",
            str(broadcast_id),
            {"was": b.state, "units_cancelled": stopped, "units_handed_back": handed_back},
        )
    return describe(app, _get(app, broadcast_id))


def preview(
    app: AppContext, broadcast_id: int, openid: str, account: str | None = None
) -> BroadcastPreview:
    """Send the broadcast's content to one test follower on the account's preview list."""
    b = _load(app, "broadcast.preview", broadcast_id, account)
    acct = accounts.get(app, b.account)
    allowed = account_settings.value(acct, "preview_openids")
    if openid not in allowed:
        raise ValidationError(
            f"'{openid}' is not on {acct.name}'s preview list. Add it with bankwx account "
            f"update {acct.name} --preview-openids OPENID."
        )
    client = app.client(acct)
    content = b.content
    if isinstance(content, TemplateContent):
        body = {
            "touser": openid,
            "template_id": content.template_id,
            "data": content.to_json()["data"],
        }
        answer = client.post("/cgi-bin/message/template/send", body)
    else:
        body = {"touser": openid, **_mass_content(content)}
        answer = client.post("/cgi-bin/message/mass/preview", body)
    with app.store.transaction():
        audit.record(app, "broadcast.preview", str(broadcast_id), {"to": openid})
    return BroadcastPreview(broadcast_id, openid, answer)


# --- sending -------------------------------------------------------------------------------------


def _month(app: AppContext) -> str:
    return app.clock.now().astimezone(BANK_TZ).strftime("%Y-%m")


def expand(app: AppContext, b: Broadcast) -> int:
    """Enqueue the broadcast's units (idempotent: a second run adds nothing)."""
    source = b.source
    account = b.account
    added = 0
    content = b.content
    if isinstance(content, TemplateContent):
        openids = audience_openids(app, b)
        data = content.to_json()["data"]
        for start in range(0, len(openids), EXPAND_BATCH):
            with app.store.transaction():
                for openid in openids[start : start + EXPAND_BATCH]:
                    if (
                        outbox.enqueue_template(
                            app,
                            account,
                            openid,
                            content.template_id,
                            data,
                            f"{source}:{openid}",
                            lane="broadcast",
                            source=source,
                        )
                        is not None
                    ):
                        added += 1
    elif b.audience.kind in ("all", "tag"):
        body: dict[str, Any] = {"filter": {"is_to_all": True}}
        if b.audience.kind == "tag":
            body = {"filter": {"is_to_all": False, "tag_id": int(b.audience.tag_id or 0)}}
        body.update(_mass_content(content))
        receivers = audience_openids(app, b)
        with app.store.transaction():
            if (
                outbox.enqueue_mass(
                    app,
                    account,
                    body,
                    f"{source}:all",
                    "/cgi-bin/message/mass/sendall",
                    source=source,
                    openid_count=len(receivers),
                )
                is not None
            ):
                added += 1
                app.store.broadcasts.add_receipts(account, _month(app), receivers)
    else:
        content_body = _mass_content(content)
        for number, batch in enumerate(batches(audience_openids(app, b))):
            with app.store.transaction():
                if (
                    outbox.enqueue_mass(
                        app,
                        account,
                        {"touser": batch, **content_body},
                        f"{source}:batch:{number}",
                        "/cgi-bin/message/mass/send",
                        source=source,
                        openid_count=len(batch),
                    )
                    is not None
                ):
                    added += 1
                    app.store.broadcasts.add_receipts(account, _month(app), batch)
    with app.store.transaction():
        app.store.broadcasts.update(
            b.id, BroadcastUpdate(expanded_at=_now(app), updated_at=_now(app))
        )
    return added


def _start(app: AppContext, b: Broadcast) -> Broadcast | None:
    """approved -> sending (one process wins); sending stays sending (a killed run's)."""
    if b.state == "approved":
        if b.approved_hash != b.content_hash:
            raise ConflictError(
                f"broadcast {b.id} changed after approval; it needs approval again."
            )
        with app.store.transaction():
            app.store.broadcasts.update(
                b.id,
                BroadcastUpdate(
                    state="sending",
                    started_at=b.started_at or _now(app),
                    retry_at=None,
                    updated_at=_now(app),
                ),
                expect_state="approved",
            )
            audit.record(app, "broadcast.send", str(b.id), {"by": app.operator})
        b = _get(app, b.id)
    return b if b.state == "sending" else None


def _error(counts: UnitCounts, errors: list[str]) -> str | None:
    """A finished broadcast's error: how many units failed, and the first reasons."""
    bad = counts.get("failed") + counts.get("unknown")
    if not bad:
        return None
    reasons = "; ".join(errors[:3]) or "no reason recorded"
    what = f"{bad} of {counts.total} units" if counts.total > 1 else "its unit"
    unknown = f" ({counts.get('unknown')} unknown)" if counts.get("unknown") else ""
    return f"{what} failed{unknown}: {reasons}"


def _finish(app: AppContext, broadcast_id: int) -> Broadcast:
    """A broadcast whose units are all final: sent, failed or partly_failed (with its error).
    One that was handed back for a later attempt (approved, started) finishes too, when a
    dispatcher (``bankwx serve``, ``outbox run``) sent its last units meanwhile."""
    source = f"broadcast:{broadcast_id}"
    counts = app.store.outbox.counts(source)
    if counts.open:
        return _get(app, broadcast_id)
    with app.store.transaction():
        b = _get(app, broadcast_id)
        if b.expanded_at and (b.state == "sending" or (b.state == "approved" and b.started_at)):
            bad = counts.get("failed") + counts.get("unknown")
            state = "sent" if not bad else "failed" if not counts.get("sent") else "partly_failed"
            error = _error(counts, app.store.outbox.errors(source, 3))
            app.store.broadcasts.update(
                broadcast_id,
                BroadcastUpdate(
                    state=state,
                    error=error,
                    retry_at=None,
                    finished_at=_now(app),
                    updated_at=_now(app),
                ),
            )
            audit.record(
                app, "broadcast.finish", str(broadcast_id), {"state": state, **counts.to_json()}
            )
    return _get(app, broadcast_id)


def _fail(app: AppContext, broadcast_id: int, error: str) -> Broadcast:
    """A broadcast whose send cannot succeed: ``failed`` with error; its units not yet claimed
    are cancelled (nothing half-sent is left pending)."""
    with app.store.transaction():
        b = _get(app, broadcast_id)
        if b.state not in TERMINAL and b.state != "partly_failed":
            outbox.cancel_source(app, b.source)
            app.store.broadcasts.update(
                broadcast_id,
                BroadcastUpdate(
                    state="failed",
                    error=error,
                    retry_at=None,
                    finished_at=_now(app),
                    updated_at=_now(app),
                ),
            )
            audit.record(app, "broadcast.finish", str(broadcast_id), {"state": "failed",
                         "error": error})  # fmt: skip
    return _get(app, broadcast_id)


def _later(app: AppContext, broadcast_id: int, at: float, error: str) -> Broadcast:
    """Hand a sending broadcast back (approved) for an attempt at ``at`` (Unix time): its units
    wait for a retry that can succeed (rate limit, quota, WeChat busy, network)."""
    with app.store.transaction():
        b = _get(app, broadcast_id)
        if b.state == "sending":
            retry_at = iso(datetime.fromtimestamp(at, UTC))
            app.store.broadcasts.update(
                broadcast_id,
                BroadcastUpdate(
                    state="approved", retry_at=retry_at, error=error, updated_at=_now(app)
                ),
                expect_state="sending",
            )
            audit.record(
                app, "broadcast.later", str(broadcast_id), {"retry_at": retry_at, "error": error}
            )
    return _get(app, broadcast_id)


def _unit_final(app: AppContext, unit: outbox.Unit) -> None:
    """The last unit of a broadcast reached its final state: the broadcast finishes with it,
    whichever dispatcher sent it (a `bankwx serve` may finish what a killed send began)."""
    if unit.source and not app.store.outbox.has_open(unit.source):
        _finish(app, int(unit.source.split(":", 1)[1]))


def send(
    app: AppContext,
    broadcast_id: int,
    account: str | None = None,
    progress: Progress = no_progress,
) -> tuple[Broadcast, BatchReport]:
    """Send an approved broadcast now and drain its units; returns when all are final, or when
    what is left waits for a retry later than RETRY_HORIZON_S (the broadcast is then approved
    again, with its retry_at; run-due or send finishes it)."""
    b = _load(app, "broadcast.send", broadcast_id, account)
    if b.state in ("draft", "submitted", "rejected"):
        raise ConflictError(
            f"broadcast {broadcast_id} is {b.state}: it must be approved before it is sent."
        )
    if b.state in ("sent", "partly_failed", "failed", "cancelled"):
        return b, outbox.report()  # a finished run: nothing left to do
    return _run(app, b, progress)


def run_due(
    app: AppContext, progress: Progress = no_progress
) -> tuple[list[Broadcast], BatchReport]:
    """Send every approved broadcast whose time has come (cron); resume killed runs.

    Each broadcast on its own: one that fails (ends ``failed``, or goes back to ``approved``
    for a later attempt) never holds back the others. The report counts every broadcast's
    units, and a broadcast refused before any unit was made as one failure.
    """
    require(app, "broadcast.send")
    due = app.store.broadcasts.due(_now(app))
    report = outbox.report()
    done = []
    for b in due:
        try:
            result, part = _run(app, b, progress)
        except BankwxError as exc:  # refused (changed after approval, ...): it stays as it is
            result = _get(app, b.id)
            part = outbox.report(failures=(BatchFailure(f"broadcast {b.id}", str(exc)),))
        except Exception as exc:  # a bug must not hold back the next broadcast
            log.exception("broadcast %s: run-due failed", b.id)
            reason = f"internal error ({type(exc).__name__}); tried again later"
            result = _later(app, b.id, app.clock.time() + INTERNAL_RETRY_S, reason)
            part = outbox.report(failures=(BatchFailure(f"broadcast {b.id}", reason),))
        done.append(result)
        report += part
    return done, report


def _run(app: AppContext, b: Broadcast, progress: Progress) -> tuple[Broadcast, BatchReport]:
    started = _start(app, b)
    if started is None:
        return _get(app, b.id), outbox.report()
    try:
        expand(app, started)
    except (ValidationError, NotFoundError) as exc:  # the audience cannot be sent to
        failed = _fail(app, b.id, str(exc))
        return failed, outbox.report(failures=(BatchFailure(f"broadcast {b.id}", str(exc)),))
    source = started.source
    counts = app.store.outbox.counts(source)
    with progress(f"broadcast {b.id}", counts.total) as bar:
        bar.advance(counts.total - counts.open)  # sent before (a killed run's)
        dispatcher = outbox.Dispatcher(app, b.account)
        dispatcher.start()
        try:
            report = dispatcher.drain(
                wait_for_retries=True,
                until=lambda: _settled(app, source),
                bar=bar,
                source=source,
            )
        finally:
            dispatcher.stop()
    return _after(app, b.id), report


def _settled(app: AppContext, source: str) -> bool:
    """Whether a send of source can stop: no unit open, or none being sent and the next
    attempt later than RETRY_HORIZON_S."""
    counts = app.store.outbox.counts(source)
    if not counts.open:
        return True
    if counts.get("sending"):
        return False
    next_due = app.store.outbox.next_due_at(None, source)
    return next_due is not None and next_due > app.clock.time() + RETRY_HORIZON_S


def _after(app: AppContext, broadcast_id: int) -> Broadcast:
    """After a run: finished; or handed back for its next attempt; or (paused lane, another
    dispatcher still sending) still sending, for run-due to take up."""
    source = f"broadcast:{broadcast_id}"
    counts = app.store.outbox.counts(source)
    if not counts.open:
        return _finish(app, broadcast_id)
    next_due = app.store.outbox.next_due_at(None, source)
    if counts.get("sending") or next_due is None or next_due <= app.clock.time():
        return _get(app, broadcast_id)
    errors = app.store.outbox.errors(source, 1, state="pending")
    reason = errors[0] if errors else "its units wait for a later attempt"
    units = "1 unit" if counts.open == 1 else f"{counts.open} units"
    return _later(app, broadcast_id, next_due, f"{units} to retry: {reason}")


# --- results -------------------------------------------------------------------------------------


def job_finished(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """MASSSENDJOBFINISH: add WeChat's counts to the broadcast the job belongs to (routing
    goes on: other hooks of the event run, and the engine records it)."""
    account = runtime.account.name
    broadcast_id = app.store.broadcasts.find_by_source_msgid(account, inbound.msg_id)
    if broadcast_id is not None:
        f = inbound.fields
        with app.store.transaction():
            b = _get(app, broadcast_id)
            job = MassJob(
                status=f.get("Status", ""),
                total=_int(f.get("TotalCount")),
                filtered=_int(f.get("FilterCount")),
                sent=_int(f.get("SentCount")),
                errors=_int(f.get("ErrorCount")),
            )
            app.store.broadcasts.update(
                broadcast_id, BroadcastUpdate(jobs={**b.jobs, inbound.msg_id: job})
            )
    return None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def status(app: AppContext, broadcast_id: int, account: str | None = None) -> BroadcastStatus:
    b = _load(app, "broadcast.read", broadcast_id, account)
    deliveries: dict[str, int] = {}
    if isinstance(b.content, TemplateContent):
        for unit in app.store.outbox.all(UnitFilter(source=b.source), None):
            key = unit.delivery_status or "awaiting result"
            key = "failed" if key.startswith("failed") else key
            deliveries[key] = deliveries.get(key, 0) + 1
    return BroadcastStatus(
        id=broadcast_id,
        state=b.state,
        audience_size=b.audience_size,
        units=app.store.outbox.counts(b.source).to_json(),
        jobs=b.jobs,
        template_results=deliveries,
    )


def estimate(app: AppContext, b: Broadcast) -> str | None:
    """The monthly-allowance warning for a mass broadcast, from bankwx's own sends."""
    if isinstance(b.content, TemplateContent):
        return None
    openids = audience_openids(app, b)
    over = app.store.broadcasts.saturated(b.account, _month(app), openids, MONTHLY_ALLOWANCE)
    if not over:
        return None
    return (
        f"{over} of {len(openids)} followers have already received {MONTHLY_ALLOWANCE} mass "
        "messages this month (Beijing time); WeChat will filter them. This is an estimate "
        "from bankwx's own sends: messages from WeChat's console are not counted."
    )


def describe(app: AppContext, b: Broadcast, with_estimate: bool = False) -> Broadcast:
    """The broadcast as shown: with its units by state (and the allowance estimate)."""
    units = app.store.outbox.counts(b.source).to_json()
    if not with_estimate:
        return replace(b, units=units)
    return replace(b, units=units, estimated=True, allowance_warning=estimate(app, b))


def show_to_send(app: AppContext, broadcast_id: int, account: str | None = None) -> Broadcast:
    """`show`, checked for broadcast.send: what `broadcast send` confirms before sending."""
    return describe(app, _load(app, "broadcast.send", broadcast_id, account))


def show(app: AppContext, broadcast_id: int, account: str | None = None) -> Broadcast:
    return describe(app, _load(app, "broadcast.read", broadcast_id, account), with_estimate=True)


def list_(app: AppContext, account: str | None = None, state: str | None = None) -> list[Broadcast]:
    """Broadcasts of the account named; with none, of every account the operator may use."""
    if account:
        require(app, "broadcast.read", account)
        rows = app.store.broadcasts.all(accounts.get(app, account).name, state)
    else:
        limits = visible_accounts(app, "broadcast.read")
        rows = [
            b
            for b in app.store.broadcasts.all(None, state)
            if limits is None or b.account in limits
        ]
    return [describe(app, b) for b in rows]


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py): job-finished events, and the
    outbox's final states of its units."""
    registry.on_event("masssendjobfinish", job_finished)
    registry.on_final("broadcast", _unit_final)

"""The durable outbox: every message bankwx sends on its own initiative goes through it.

- Units are enqueued in the same transaction as the decision that makes them.
- Any number of dispatchers (each ``bankwx serve``, ``bankwx outbox run``) claim units in the
  store, reply lane first, under one per-account, per-endpoint rate budget kept in the store.
- Exactly once where WeChat can de-duplicate (template ``client_msg_id`` within 10 minutes,
  mass ``clientmsgid``); at most once where it cannot (customer-service messages caught
  mid-send become ``unknown`` and are sent again only by ``outbox retry``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from bankwx_cli.clock import BANK_TZ, iso
from bankwx_cli.domain import accounts, audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import (
    NotFoundError,
    ValidationError,
    WeChatError,
    WeChatInDoubtError,
    WeChatUnavailableError,
    batch_exit_code,
)
from bankwx_cli.models import ImageReply, NewsReply, Reply, TextReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.wechat.callback import Inbound

log = logging.getLogger(__name__)

LANES = ("reply", "alert", "agent", "broadcast")
KINDS = ("custom", "template", "mass")
STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled")
ENDPOINTS = {
    "custom": "/cgi-bin/message/custom/send",
    "template": "/cgi-bin/message/template/send",
    "mass": "/cgi-bin/message/mass/send",
}
# Calls a second per account (protocol sheet §7: mass 60/min; the others have daily quotas)
DEFAULT_RATES = {
    "/cgi-bin/message/custom/send": 100,
    "/cgi-bin/message/template/send": 100,
    "/cgi-bin/message/mass/send": 1,
}
TEMPLATE_DEDUP_S = 600.0  # WeChat honours client_msg_id for 10 minutes
HEARTBEAT_S = 1.0
DEAD_AFTER_S = 5.0
MAX_ATTEMPTS = 8

SENDS = Counter("bankwx_outbox_sends_total", "Outbox sends", ["endpoint", "outcome"])
BACKLOG = Gauge("bankwx_outbox_backlog", "Pending outbox units", ["lane"])
OLDEST = Gauge("bankwx_outbox_oldest_pending_seconds", "Age of the oldest due unit", ["lane"])


# --- enqueue -----------------------------------------------------------------------------------


def _unit(
    app: AppContext,
    account: str,
    kind: str,
    lane: str,
    openid: str | None,
    payload: dict[str, Any],
    key: str,
    source: str | None,
    not_before: float | None = None,
) -> dict[str, Any]:
    if lane not in LANES:
        raise ValidationError(f"lane '{lane}' is invalid: use {', '.join(LANES)}.")
    return {
        "account": account,
        "kind": kind,
        "lane": lane,
        "lane_rank": LANES.index(lane),
        "openid": openid,
        "payload": payload,
        "idempotency_key": key,
        "source": source,
        "state": "pending",
        "next_attempt_at": not_before or app.clock.time(),
        "created_at": iso(app.clock.now()),
    }


def wechat_key(key: str) -> str:
    """Our idempotency key as WeChat accepts it (64 bytes at most)."""
    if len(key.encode()) <= 64 and key.isascii():
        return key
    return "bx-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def enqueue_custom(
    app: AppContext,
    account: str,
    openid: str,
    body: dict[str, Any],
    key: str,
    lane: str = "reply",
    source: str | None = None,
) -> int | None:
    """Enqueue a customer-service message (joins the caller's transaction)."""
    payload = {"touser": openid, **body}
    return app.store.outbox.enqueue(
        _unit(app, account, "custom", lane, openid, payload, key, source)
    )


def enqueue_template(
    app: AppContext,
    account: str,
    openid: str,
    template_id: str,
    data: dict[str, Any],
    key: str,
    *,
    url: str | None = None,
    lane: str = "alert",
    source: str | None = None,
) -> int | None:
    """Enqueue a template message carrying our client_msg_id (joins the caller's transaction).

    Returns the unit's id, or None when a unit with this key exists (nothing is added).
    """
    payload: dict[str, Any] = {
        "touser": openid,
        "template_id": template_id,
        "client_msg_id": wechat_key(key),
        "data": data,
    }
    if url:
        payload["url"] = url
    return app.store.outbox.enqueue(
        _unit(app, account, "template", lane, openid, payload, key, source)
    )


def enqueue_mass(
    app: AppContext,
    account: str,
    payload: dict[str, Any],
    key: str,
    endpoint: str,
    source: str | None = None,
    openid_count: int = 0,
) -> int | None:
    """Enqueue one mass job (sendall or send) carrying our clientmsgid."""
    body = {**payload, "clientmsgid": wechat_key(key)}
    wrapped = {"endpoint": endpoint, "body": body, "count": openid_count}
    return app.store.outbox.enqueue(
        _unit(app, account, "mass", "broadcast", None, wrapped, key, source)
    )


def custom_body(reply: Reply) -> dict[str, Any] | None:
    """A passive reply as a customer-service message body, or None (transfer)."""
    if isinstance(reply, TextReply):
        return {"msgtype": "text", "text": {"content": reply.content}}
    if isinstance(reply, ImageReply):
        return {"msgtype": "image", "image": {"media_id": reply.media_id}}
    if isinstance(reply, NewsReply):
        a = reply.article
        article = {"title": a.title, "description": a.description, "url": a.url, "picurl": a.picurl}
        return {"msgtype": "news", "news": {"articles": [article]}}
    return None


WINDOW_EVENTS = {"subscribe", "scan", "click", "scancode_push", "scancode_waitmsg"}


def opens_window(inbound: Inbound) -> bool:
    """Whether the follower's input opened a customer-service window (§5.3)."""
    if inbound.msg_type != "event":
        return True
    return inbound.event in WINDOW_EVENTS


def late_answer(
    app: AppContext, runtime: Runtime, inbound: Inbound, message_id: int, decision: Decision
) -> str:
    """The routing engine's late hook: the handler overran the deadline (5-second guarantee).

    Runs inside the transaction that records the message's outcome.
    """
    if not opens_window(inbound):
        return "late_no_window"
    body = custom_body(decision.reply) if decision.reply is not None else None
    if body is None:
        return "late_unsendable"
    enqueue_custom(app, runtime.account.name, inbound.openid, body, f"late:{message_id}", "reply")
    return "late_enqueued"


def job_finished(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """TEMPLATESENDJOBFINISH: record WeChat's delivery result on the unit."""
    from bankwx_cli.domain.routing import Decision

    status = inbound.fields.get("Status", "")
    with app.store.transaction():
        app.store.outbox.record_delivery(runtime.account.name, inbound.msg_id, status)
    return Decision(None, route="event:templatesendjobfinish", outcome="recorded")


# --- dispatching -------------------------------------------------------------------------------


@dataclass
class Report:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retried: int = 0
    wechat_refusals: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return batch_exit_code(self.failed + self.unknown, self.wechat_refusals)

    def summary(self) -> str:
        return (
            f"{self.sent} sent, {self.failed} failed, {self.unknown} unknown, "
            f"{self.retried} to retry."
        )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def rate_for(app: AppContext, account: str, endpoint: str) -> int:
    rates = accounts.get(app, account).settings.get("rates") or {}
    value = rates.get(endpoint) or rates.get(endpoint.rsplit("/", 1)[-1])
    return int(value) if value else DEFAULT_RATES.get(endpoint, 10)


class Dispatcher:
    """Claims due units and sends them; several may run at once on one store."""

    def __init__(
        self,
        app: AppContext,
        account: str | None = None,
        threads: int = 8,
        batch: int = 64,
    ) -> None:
        self.app = app
        self.account = account
        self.batch = batch
        self.host = socket.gethostname()
        self.holder = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bankwx-send")
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._rates: dict[tuple[str, str], int] = {}

    # heartbeats keep this dispatcher's claims alive while it sends
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.app.store.outbox.heartbeat(self.holder, self.host, os.getpid(), time.time())
            except Exception:
                log.exception("heartbeat failed")

    def start(self) -> None:
        self.app.store.outbox.heartbeat(self.holder, self.host, os.getpid(), time.time())
        self._beat = threading.Thread(target=self._heartbeat_loop, daemon=True)
        self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=True)
        if self._beat is not None:
            self._beat.join(timeout=2)
        try:
            self.app.store.outbox.retire(self.holder)
        except Exception:
            log.exception("could not retire dispatcher")

    def recover(self) -> int:
        """Hand back units whose dispatcher died (stale heartbeat, or its process is gone)."""
        now = time.time()
        dead = []
        for row in self.app.store.outbox.dispatchers():
            if row["holder"] == self.holder:
                continue
            stale = row["heartbeat_at"] < now - DEAD_AFTER_S
            gone = row["host"] == self.host and not _alive(int(row["pid"]))
            if stale or gone:
                dead.append(row["holder"])
        with self.app.store.transaction():
            dead += [h for h in self.app.store.outbox.orphan_holders() if h != self.holder]
            return self.app.store.outbox.recover(dead, now, TEMPLATE_DEDUP_S)

    def _rate(self, account: str, endpoint: str) -> int:
        key = (account, endpoint)
        if key not in self._rates:
            self._rates[key] = rate_for(self.app, account, endpoint)
        return self._rates[key]

    def claim(self) -> list[dict[str, Any]]:
        """Claim due units within the rate budget (one short transaction)."""
        now = time.time()
        store = self.app.store
        with store.transaction():
            due = store.outbox.due(now, self.batch, self.account)
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for unit in due:
                groups.setdefault((unit["account"], _endpoint(unit)), []).append(unit)
            claimed: list[dict[str, Any]] = []
            for (account, endpoint), units in groups.items():
                granted = store.outbox.take_budget(
                    account, endpoint, len(units), self._rate(account, endpoint), now
                )
                claimed += units[:granted]
            claimed.sort(key=lambda u: (u["lane_rank"], u["next_attempt_at"], u["id"]))
            for unit in claimed:
                unit["_window"] = int(now)
            store.outbox.mark_sending([u["id"] for u in claimed], self.holder, now)
        return claimed

    def send(self, unit: dict[str, Any]) -> dict[str, Any]:
        """Send one unit; returns its result row (never raises for WeChat's answers).

        A unit claimed under one second's rate budget is not sent in a later second: it goes
        back to pending untouched, so the dispatchers together stay under the budget.
        """
        window_end = unit.get("_window", 0) + 1
        if window_end and time.time() >= window_end:
            return {
                "id": unit["id"],
                "state": "pending",
                "undo_attempt": 1,
                "last_error": unit.get("last_error"),
                "next_attempt_at": window_end,
            }
        endpoint = _endpoint(unit)
        account = accounts.get(self.app, unit["account"])
        client = self.app.client(account)
        payload = unit["payload"]
        now = time.time()
        try:
            if unit["kind"] == "custom":
                answer = client.post(endpoint, payload, idempotent=False)
            elif unit["kind"] == "template":
                answer = client.post(endpoint, payload)
            else:
                answer = client.post(payload["endpoint"], payload["body"])
            SENDS.labels(endpoint, "sent").inc()
            msgid = answer.get("msgid") or answer.get("msg_id")
            return {"id": unit["id"], "state": "sent", "wechat_msgid": _text(msgid)}
        except WeChatInDoubtError as exc:
            SENDS.labels(endpoint, "unknown").inc()
            return {"id": unit["id"], "state": "unknown", "last_error": str(exc)}
        except WeChatUnavailableError as exc:
            SENDS.labels(endpoint, "retry").inc()
            return self._later(unit, str(exc), now, _backoff(unit["attempts"]))
        except WeChatError as exc:
            SENDS.labels(endpoint, f"error_{exc.errcode}").inc()
            if unit["kind"] == "mass" and exc.errcode == 45065:
                msgid = exc.body.get("msg_id")
                return {"id": unit["id"], "state": "sent", "wechat_msgid": _text(msgid)}
            if exc.errcode == 45066:
                return self._later(unit, str(exc), now, 61)
            if exc.errcode == 45011:
                return self._later(unit, str(exc), now, 60 - now % 60 + 1)
            if exc.errcode == 45009:
                return self._later(unit, str(exc), now, _until_bank_midnight(now))
            return {"id": unit["id"], "state": "failed", "last_error": str(exc)}
        except Exception as exc:  # a bug must not lose the unit: keep it, say why
            log.exception("sending unit %s failed", unit["id"])
            return self._later(unit, f"internal error: {type(exc).__name__}", now, 30)

    def _later(self, unit: dict[str, Any], error: str, now: float, delay: float) -> dict[str, Any]:
        """Back to pending for a later attempt (WeChat answered: it did not accept the unit)."""
        if unit["attempts"] >= MAX_ATTEMPTS:
            gave_up = f"{error} (gave up after {unit['attempts']} attempts)"
            return {"id": unit["id"], "state": "failed", "last_error": gave_up}
        return {
            "id": unit["id"],
            "state": "pending",
            "last_error": error,
            "next_attempt_at": now + delay,
        }

    def drain(
        self,
        *,
        follow: bool = False,
        wait_for_retries: bool = False,
        until: Callable[[], bool] | None = None,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Report:
        """Send what is due. follow: forever (until stop); wait_for_retries: also wait for
        units whose next attempt is in the future; until: a condition that ends the run."""
        report = Report()
        last_recover = 0.0
        stop = stop or threading.Event()
        while not stop.is_set():
            if time.monotonic() - last_recover > 1.0:
                last_recover = time.monotonic()
                self.recover()
                if not follow and self._paused_everything():
                    break
            units = self.claim()
            if units:
                results = list(self.pool.map(self.send, units))
                self.app.store.outbox.finish(results, time.time())
                for result in results:
                    self._count(report, result, units)
                if progress:
                    progress(sum(1 for r in results if r["state"] in ("sent", "failed", "unknown")))
                continue
            if until is not None and until():
                break
            next_due = self.app.store.outbox.next_due_at(self.account)
            now = time.time()
            if next_due is None:
                if not follow and not self._others_sending():
                    break
                stop.wait(0.2)
                continue
            if next_due <= now:
                stop.wait(max(0.01, 1 - now % 1))  # rate budget spent or paused: next second
                if not follow and self._paused_everything():
                    break
                continue
            if not follow and not wait_for_retries:
                break
            stop.wait(min(1.0, next_due - now))
        return report

    def _others_sending(self) -> bool:
        rows = self.app.store.outbox.all({"state": "sending", "account": self.account}, 1)
        return bool(rows)

    def _paused_everything(self) -> bool:
        """True when every due unit waits on a pause (so a one-off run can stop)."""
        now = time.time()
        if self.app.store.outbox.due(now, 1, self.account):
            return False
        pending = self.app.store.outbox.all({"state": "pending", "account": self.account}, 1)
        return bool(pending) and pending[0]["next_attempt_at"] <= now

    @staticmethod
    def _count(report: Report, result: dict[str, Any], units: list[dict[str, Any]]) -> None:
        state = result["state"]
        if state == "sent":
            report.sent += 1
        elif state == "failed":
            report.failed += 1
            report.wechat_refusals += 1 if "WeChat" in str(result.get("last_error")) else 0
            report.errors.append(f"unit {result['id']}: {result.get('last_error')}")
        elif state == "unknown":
            report.unknown += 1
            report.errors.append(f"unit {result['id']}: {result.get('last_error')}")
        elif not result.get("undo_attempt"):
            report.retried += 1


def _endpoint(unit: dict[str, Any]) -> str:
    if unit["kind"] == "mass":
        return ENDPOINTS["mass"]
    return ENDPOINTS[unit["kind"]]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _backoff(attempts: int) -> float:
    return float(min(300, 2 ** max(1, attempts)))


def _until_bank_midnight(now: float) -> float:
    local = datetime.fromtimestamp(now, BANK_TZ)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=1, second=0, microsecond=0)
    return midnight.timestamp() - now


# --- operator commands -------------------------------------------------------------------------


def list_(
    app: AppContext,
    state: str | None = None,
    lane: str | None = None,
    account: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    require(app, "outbox.read", account)
    if state and state not in STATES:
        raise ValidationError(f"--state '{state}' is invalid: use {', '.join(STATES)}.")
    if lane and lane not in LANES:
        raise ValidationError(f"--lane '{lane}' is invalid: use {', '.join(LANES)}.")
    name = accounts.get(app, account).name if account else None
    rows = app.store.outbox.all({"state": state, "lane": lane, "account": name}, limit)
    for row in rows:
        row["next_attempt_at"] = iso(datetime.fromtimestamp(row["next_attempt_at"], BANK_TZ))
    return rows


def run(
    app: AppContext,
    account: str | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> Report:
    """Drain what is due (or keep dispatching with follow)."""
    require(app, "outbox.run", account)
    name = accounts.get(app, account).name if account else None
    dispatcher = Dispatcher(app, name)
    dispatcher.start()
    try:
        return dispatcher.drain(follow=follow, stop=stop)
    finally:
        dispatcher.stop()


def retry(app: AppContext, unit_id: int) -> dict[str, Any]:
    """Send an unknown or failed unit again (the operator has checked it was not delivered)."""
    require(app, "outbox.retry")
    with app.store.transaction():
        unit = app.store.outbox.get(unit_id)
        if unit is None:
            raise NotFoundError(f"no outbox unit {unit_id}. See bankwx outbox list.")
        if unit["state"] not in ("unknown", "failed"):
            raise ValidationError(
                f"unit {unit_id} is {unit['state']}: only unknown or failed units are retried."
            )
        app.store.outbox.retry(unit_id, time.time())
        audit.record(app, "outbox.retry", str(unit_id), {"was": unit["state"]})
    return app.store.outbox.get(unit_id) or {}


def pause(app: AppContext, account: str | None, lane: str | None) -> None:
    """Emergency stop: dispatchers claim nothing more for this account and lane."""
    require(app, "outbox.pause", account)
    name = accounts.get(app, account).name if account else "*"
    if lane and lane not in LANES:
        raise ValidationError(f"--lane '{lane}' is invalid: use {', '.join(LANES)}.")
    with app.store.transaction():
        app.store.outbox.pause(name, lane or "*", app.operator, iso(app.clock.now()))
        audit.record(app, "outbox.pause", name, {"lane": lane or "*"})


def resume(app: AppContext, account: str | None, lane: str | None) -> int:
    require(app, "outbox.pause", account)
    name = accounts.get(app, account).name if account else "*"
    with app.store.transaction():
        n = app.store.outbox.resume(name, lane or "*")
        audit.record(app, "outbox.resume", name, {"lane": lane or "*"})
    return n


def update_metrics(app: AppContext) -> None:
    now = time.time()
    seen = set()
    for row in app.store.outbox.backlog(now):
        BACKLOG.labels(row["lane"]).set(row["pending"])
        OLDEST.labels(row["lane"]).set(max(0.0, row["oldest_s"] or 0.0))
        seen.add(row["lane"])
    for lane in LANES:
        if lane not in seen:
            BACKLOG.labels(lane).set(0)
            OLDEST.labels(lane).set(0)


def install(app: AppContext) -> None:
    """Attach the outbox to the routing engine (late answers, job results)."""
    from bankwx_cli.domain import routing

    if late_answer not in routing.LATE_HOOKS:
        routing.LATE_HOOKS.append(late_answer)
    hooks = routing.EVENT_HOOKS.setdefault("templatesendjobfinish", [])
    if job_finished not in hooks:
        hooks.append(job_finished)

"""The durable outbox: every message bankwx sends on its own initiative goes through it.

- Units are enqueued in the same transaction as the decision that makes them.
- Any number of dispatchers (each ``bankwx serve``, ``bankwx outbox run``) claim units in the
  store, reply lane first, under one per-account, per-endpoint rate budget kept in the store.
- Exactly once where WeChat can de-duplicate (template ``client_msg_id`` within 10 minutes,
  mass ``clientmsgid``); at most once where it cannot (customer-service messages caught
  mid-send become ``unknown`` and are sent again only by ``outbox retry``).

Two extension points of ``bankwx_cli/extensions.py``, declared by each area's
``install(registry)`` (this module's own: ``custom``, ``template`` and ``mass``), whatever the
entry point:

- senders per kind (``registry.sender``): the send function, the rate-budget key and the crash
  policy (``at_most_once``: a unit caught mid-send becomes ``unknown``; ``idempotent``: it is
  sent again, because WeChat de-duplicates it). A unit of a kind no sender handles fails on its own,
  with an error naming the kind; it never holds up the units behind it.
- hooks per source type (the ``broadcast`` of ``broadcast:12``): ``registry.on_final`` hooks
  run once each time a unit reaches sent, failed, unknown or cancelled, in the transaction that
  records it; ``registry.on_delivery`` hooks get WeChat's later delivery report
  (TEMPLATESENDJOBFINISH); ``registry.before_send`` checks run before a unit's first attempt,
  whenever it comes due (also after a deferral), and may cancel it or defer it again.

Units are ``models.outbox.OutboxUnit`` values (``Unit`` here), frozen: the store returns them
with their payloads opened, a claim pairs each with its rate-budget second (``Claimed``), and a
send attempt's outcome is a ``SendResult``.

Business time (next attempts, backoff, rate-budget seconds, heartbeats) is ``app.clock``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from bankwx_cli import clock, extensions
from bankwx_cli.clock import BANK_TZ, iso
from bankwx_cli.domain import account_settings, accounts, audit, windows
from bankwx_cli.domain.permissions import load_row, require
from bankwx_cli.errors import (
    NotFoundError,
    ValidationError,
    WeChatError,
    WeChatInDoubtError,
    WeChatUnavailableError,
)
from bankwx_cli.extensions import Sender, SourceHooks
from bankwx_cli.models.batches import BatchFailure, BatchReport, ProgressBar
from bankwx_cli.models.outbox import Claimed, OutboxRun, OutboxUnit, SendResult, UnitFilter
from bankwx_cli.models.replies import ImageReply, NewsReply, Reply, TextReply
from bankwx_cli.storage.outbox import UNREADABLE

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.extensions import Registry
    from bankwx_cli.wechat.callback import Inbound
    from bankwx_cli.wechat.client import WeChatClient

log = logging.getLogger(__name__)

LANES = ("reply", "alert", "agent", "broadcast")
STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled")
FINAL = ("sent", "failed", "unknown", "cancelled")
TEMPLATE_DEDUP_S = 600.0  # WeChat honours client_msg_id for 10 minutes
HEARTBEAT_S = 1.0
DEAD_AFTER_S = 5.0
MAX_ATTEMPTS = 8
SEND_THREADS = 8  # a dispatcher's sending threads (WeChat's answers are waited for in them)


@dataclass(frozen=True)
class _Metrics:
    sends: Any  # prometheus_client Counter and Gauges
    backlog: Any
    oldest: Any


_metrics_lock = threading.Lock()


@cache
def _metrics() -> _Metrics:
    """The outbox's metrics, made on first use: prometheus_client is imported by the commands
    that send or report, not by every command that merely loads this module (start-up). The
    lock: a dispatcher's sending threads may ask first at once, and a metric registers once."""
    with _metrics_lock:
        return _made_metrics()


@cache
def _made_metrics() -> _Metrics:
    from prometheus_client import Counter, Gauge

    return _Metrics(
        Counter("bankwx_outbox_sends_total", "Outbox sends", ["endpoint", "outcome"]),
        Gauge("bankwx_outbox_backlog", "Pending outbox units", ["lane"]),
        Gauge("bankwx_outbox_oldest_pending_seconds", "Age of the oldest due unit", ["lane"]),
    )


# --- the registries ----------------------------------------------------------------------------

STRANDED = "the sender stopped mid-send; WeChat may or may not have delivered it"


Unit = OutboxUnit  # the one unit model (bankwx_cli/models/outbox.py), as senders and hooks see it


@dataclass(frozen=True)
class Defer:
    """A before-send check's verdict: not now; due again at until (Unix time)."""

    until: float
    reason: str = ""


@dataclass(frozen=True)
class Cancel:
    """A before-send check's verdict: never send it (the unit ends cancelled, with reason)."""

    reason: str


def sender_for(app: AppContext, kind: str) -> Sender | None:
    """The sender of kind, or None when no sender (for this settings) handles it."""
    return extensions.registry().senders(extensions.tests_enabled(app)).get(kind)


def kinds(app: AppContext) -> list[str]:
    return sorted(extensions.registry().senders(extensions.tests_enabled(app)))


def _hooks(app: AppContext, unit: Unit) -> SourceHooks:
    found = extensions.registry().source_hooks(extensions.tests_enabled(app))
    return found.get(unit.source_type or "") or _NO_HOOKS


_NO_HOOKS = SourceHooks()


def _guarded(app: AppContext, what: str, unit: Unit, hook: Callable[..., None], *args: Any) -> None:
    """Run a hook inside the current transaction; its failure undoes only its own writes."""
    try:
        with app.store.outbox.savepoint():
            hook(app, unit, *args)
    except Exception:
        log.exception("outbox %s hook failed for unit %s (%s)", what, unit.id, unit.source)


#: WeChat's answers that the follower's customer-service window is closed (45015) or spent
#: (45047), as a failed unit's error starts (errors.WeChatError)
WINDOW_REFUSED = ("WeChat 45015 ", "WeChat 45047 ")


def finalised(app: AppContext, units: Iterable[Unit]) -> None:
    """Call the final-state hooks of units just recorded final (in the recording transaction).
    A customer-service unit WeChat refused for the window closes the follower's window, whatever
    bankwx counted (domain/windows.py)."""
    for unit in units:
        if (
            unit.state == "failed"
            and unit.kind == "custom"
            and unit.openid
            and (unit.last_error or "").startswith(WINDOW_REFUSED)
        ):
            windows.closed_by_wechat(app, unit.account, unit.openid)
        for hook in _hooks(app, unit).final:
            _guarded(app, "final-state", unit, hook)


def _verdict(app: AppContext, unit: Unit) -> Defer | Cancel | None:
    for check in _hooks(app, unit).checks:
        verdict = check(app, unit)
        if verdict is not None:
            return verdict
    return None


_clients: weakref.WeakKeyDictionary[AppContext, dict[str, WeChatClient]] = (
    weakref.WeakKeyDictionary()
)
_clients_lock = threading.Lock()


def _client(app: AppContext, unit: Unit) -> WeChatClient:
    """The unit's account's client (``app.client``'s, one per account and process), its account
    read from the store once, not at every send: the sending threads would otherwise wait for
    the store's lock behind each of the dispatcher's commits."""
    with _clients_lock:
        clients = _clients.setdefault(app, {})
    client = clients.get(unit.account)
    if client is None:
        client = clients[unit.account] = app.client(accounts.get(app, unit.account))
    return client


def _msgid(answer: dict[str, Any]) -> str | None:
    return _text(answer.get("msgid") or answer.get("msg_id"))


def send_custom(app: AppContext, unit: Unit) -> str | None:
    """A customer-service message: nothing de-duplicates it, so never sent twice on a doubt."""
    path = "/cgi-bin/message/custom/send"
    return _msgid(_client(app, unit).post(path, unit.body, idempotent=False))


def send_template(app: AppContext, unit: Unit) -> str | None:
    """A template message carrying our client_msg_id."""
    return _msgid(_client(app, unit).post("/cgi-bin/message/template/send", unit.body))


def send_mass(app: AppContext, unit: Unit) -> str | None:
    """A mass job (sendall or send) carrying our clientmsgid."""
    payload = unit.body
    try:
        return _msgid(_client(app, unit).post(payload["endpoint"], payload["body"]))
    except WeChatError as exc:
        if exc.errcode != 45065:
            raise
        return _text(exc.body.get("msg_id"))  # our clientmsgid was sent before: that job


# --- enqueue -----------------------------------------------------------------------------------


def enqueue(
    app: AppContext,
    account: str,
    kind: str,
    payload: dict[str, Any],
    key: str,
    *,
    lane: str,
    openid: str | None = None,
    source: str | None = None,
    not_before: float | None = None,
) -> int | None:
    """Enqueue a unit of a declared kind (joins the caller's transaction).

    Returns the unit's id, or None when a unit with this key exists (nothing is added).
    Raises ValidationError for an unknown lane or kind.
    """
    if lane not in LANES:
        raise ValidationError(f"lane '{lane}' is invalid: use {', '.join(LANES)}.")
    if sender_for(app, kind) is None:
        raise ValidationError(f"outbox kind '{kind}' is unknown: use {', '.join(kinds(app))}.")
    now = app.clock.now()
    return app.store.outbox.enqueue(
        account=account,
        kind=kind,
        lane=lane,
        lane_rank=LANES.index(lane),
        openid=openid,
        payload=payload,
        key=key,
        source=source,
        due_at=not_before or now.timestamp(),
        created_at=iso(now),
    )


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
    return enqueue(app, account, "custom", payload, key, lane=lane, openid=openid, source=source)


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
    return enqueue(app, account, "template", payload, key, lane=lane, openid=openid, source=source)


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
    return enqueue(app, account, "mass", wrapped, key, lane="broadcast", source=source)


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

    Runs inside the transaction that records the message's outcome, so that the window's check
    and the enqueue are one: the follower's input opened (or renewed) their customer-service
    window, and the late answer takes one of its messages, as an agent's reply does; a window
    spent (``late_no_allowance``) or none opened (``late_no_window``) enqueues nothing.
    """
    if not opens_window(inbound):
        return "late_no_window"
    body = custom_body(decision.reply) if decision.reply is not None else None
    if body is None:
        return "late_unsendable"
    account, openid = runtime.account.name, inbound.openid
    kind = "event" if inbound.msg_type == "event" else "message"
    windows.heard_message(app, account, openid, kind, message_id)
    allowed = windows.allowance(app, account, openid)
    if not allowed.open:
        return "late_no_window"
    if allowed.left <= 0:
        return "late_no_allowance"
    enqueue_custom(app, account, openid, body, f"late:{message_id}", "reply")
    return "late_enqueued"


def job_finished(app: AppContext, runtime: Runtime, inbound: Inbound) -> Decision | None:
    """TEMPLATESENDJOBFINISH: record WeChat's delivery result on the unit and tell the delivery
    hooks of its source. Answers nothing, so other hooks on this event run too (the receiver
    records the event as it records every job result)."""
    status = inbound.fields.get("Status", "")
    with app.store.transaction():
        for unit in app.store.outbox.record_delivery(runtime.account.name, inbound.msg_id, status):
            for hook in _hooks(app, unit).delivery:
                _guarded(app, "delivery", unit, hook, status)
    return None


def cancel_source(app: AppContext, source: str) -> int:
    """Cancel the source's units not yet claimed (joins the caller's transaction); the final-state
    hooks of each run. Returns how many were cancelled."""
    with app.store.transaction():
        units = app.store.outbox.cancel_source(source, app.clock.time())
        finalised(app, units)
    return len(units)


# --- dispatching -------------------------------------------------------------------------------


def report(sent: int = 0, retried: int = 0, failures: tuple[BatchFailure, ...] = ()) -> BatchReport:
    """A sending run's report: "N sent, N failed, N unknown, N to retry." (DESIGN §3: exits 0
    when nothing failed, 3 when every failure was WeChat's refusal, else 1)."""
    return BatchReport(
        done=sent, retried=retried, failures=failures, done_word="sent", counts_unknown=True
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


def rate_for(app: AppContext, account: str, budget: str, default: int = 10) -> int:
    """Calls a second for the account's budget key (the account's `rates`, else default)."""
    rates = account_settings.value(accounts.get(app, account), "rates")
    value = rates.get(budget) or rates.get(budget.rsplit("/", 1)[-1])
    return int(value) if value else default


class Dispatcher:
    """Claims due units and sends them; several may run at once on one store.

    Every business time (next attempts, backoff, the rate budget's seconds, heartbeats and the
    staleness that means a dispatcher died) is the app's clock; real time only paces the loops.
    """

    def __init__(
        self,
        app: AppContext,
        account: str | None = None,
        threads: int = SEND_THREADS,
        batch: int = 64,
        source: str | None = None,
    ) -> None:
        """``source``: claim only that source's units (``send_now``)."""
        self.app = app
        self.account = account
        self.source = source
        self.batch = batch
        self.window = 2 * threads  # units in flight: the pool always has the next one queued
        self._budget_spent = False  # the last claim found a rate budget spent
        # seconds WeChat takes to answer a send (``_timed``); a cautious start, until
        # answers are measured: the first second's last moments are the widest
        self.latency = 0.125
        self.host = socket.gethostname()
        self.holder = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bankwx-send")
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._rates: dict[tuple[str, str], int] = {}
        self._settled: list[SendResult] = []  # refused at claim: counted by drain

    # heartbeats keep this dispatcher's claims alive while it sends
    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):  # real time: only how often it beats
            try:
                self.heartbeat()
            except Exception:
                log.exception("heartbeat failed")

    def heartbeat(self) -> None:
        """Say, in the store, that this dispatcher is alive (now, on the app's clock)."""
        self.app.store.outbox.heartbeat(self.holder, self.host, os.getpid(), self.app.clock.time())

    def start(self) -> None:
        self.heartbeat()
        self._beat = threading.Thread(target=self._heartbeat_loop, daemon=True)
        self._beat.start()

    def stop(self) -> None:
        """Stop: wait for the sends under way, hand back what is still claimed (a run
        interrupted before its results were recorded: each unit by its kind's crash policy,
        as a dead dispatcher's), and leave the store's list of dispatchers."""
        self._stop.set()
        self.pool.shutdown(wait=True)
        if self._beat is not None:
            self._beat.join(timeout=2)
        try:
            with self.app.store.transaction():
                held = self.app.store.outbox.stranded([self.holder])
                _hand_back(self.app, held, self.app.clock.time())
        except Exception:
            log.exception("could not hand back the units this dispatcher held")
        try:
            self.app.store.outbox.retire(self.holder)
        except Exception:
            log.exception("could not retire dispatcher")

    def recover(self) -> int:
        """Hand back units whose dispatcher died (stale heartbeat, or its process is gone).

        Each goes back to pending or becomes unknown by its kind's crash policy.
        """
        return recover(self.app, self.holder)

    def _rate(self, account: str, sender: Sender) -> int:
        key = (account, sender.budget)
        if key not in self._rates:
            self._rates[key] = rate_for(self.app, account, sender.budget, sender.rate)
        return self._rates[key]

    def _timed(self, seconds: float) -> None:
        """One answer's time into ``latency``: a slower answer than the estimate is taken at
        once, a quicker one into the moving average. A slow spell (a busy WeChat, a loaded
        machine) widens the last moments from the next send on; they narrow again slowly."""
        if seconds > self.latency:
            self.latency = seconds
        else:
            self.latency = 0.8 * self.latency + 0.2 * seconds

    def _last_moments(self) -> float:
        """How near a second's end a send is claimed only to reach WeChat in the next second:
        twice WeChat's moving answer time, at most 250 ms."""
        return min(0.25, 2 * self.latency)

    def claim(self, limit: int | None = None) -> list[Claimed]:
        """Claim due units (at most limit, else batch) within the rate budget (one short
        transaction).

        A unit of a kind no sender handles ends failed here, alone; a unit whose source's check
        says so is cancelled or deferred here (its share of this second's budget is not used).
        """
        now = self.app.clock.time()
        store = self.app.store
        with store.transaction():
            due = store.outbox.due(now, limit or self.batch, self.account, self.source)
            self._budget_spent = False
            groups: dict[tuple[str, str], tuple[Sender, list[Unit]]] = {}
            for unit in due:
                found = sender_for(self.app, unit.kind)
                if found is None:
                    error = (
                        f"unknown outbox kind '{unit.kind}': no sender is declared for it "
                        "in this bankwx. Retry the unit (bankwx outbox retry) with a bankwx "
                        "that has it."
                    )
                    self._settle(unit, "failed", error, now)
                    continue
                if unit.payload is None:  # purged, or sealed under another key: never sent
                    self._settle(unit, "failed", UNREADABLE, now)
                    continue
                groups.setdefault((unit.account, found.budget), (found, []))[1].append(unit)
            claimed: list[Unit] = []
            # a send claimed in a second's last moments reaches WeChat in the next one: it is
            # counted there (as WeChat counts it), not in the second it was claimed in
            counted_at = now + self._last_moments()
            for (account, budget), (found, units) in groups.items():
                granted = store.outbox.take_budget(
                    account, budget, len(units), self._rate(account, found), counted_at
                )
                self._budget_spent = self._budget_spent or granted < len(units)
                claimed += units[:granted]
            # checks run on what is about to be sent (a unit waiting for budget is not checked)
            claimed = [u for u in claimed if u.attempts or self._may_send(u, now)]
            claimed.sort(key=lambda u: (u.lane_rank, u.next_attempt_at, u.id))
            store.outbox.mark_sending([u.id for u in claimed], self.holder, now)
        early = int(counted_at) > int(now)
        return [Claimed(unit, window=int(now), early=early) for unit in claimed]

    def _settle(self, unit: Unit, state: str, error: str, now: float) -> None:
        if self.app.store.outbox.settle(unit.id, state, error, now):
            result = SendResult(unit.id, state, last_error=error)
            if state == "failed":
                self._settled.append(result)
            finalised(self.app, [replace(unit, state=state, last_error=error)])

    def _may_send(self, unit: Unit, now: float) -> bool:
        """Run the source's before-send checks: False when the unit was cancelled or deferred."""
        try:
            verdict = _verdict(self.app, unit)
        except Exception:
            log.exception("before-send check failed for unit %s; deferred", unit.id)
            verdict = Defer(now + 30, "the before-send check failed")
        if isinstance(verdict, Cancel):
            self._settle(unit, "cancelled", verdict.reason, now)
            return False
        if isinstance(verdict, Defer):
            self.app.store.outbox.postpone(unit.id, max(verdict.until, now + 1), now)
            return False
        return True

    def send(self, claimed: Claimed) -> SendResult:
        """Send one claimed unit; returns its result (never raises for WeChat's answers).

        A unit is sent in the second whose rate budget counted it: one counted in the next
        second's (claimed in this one's last moments) waits for that second to begin, lest a
        quick answer reach WeChat in this one, over its budget. It is not sent in a later
        second, nor in its second's last moments (it would reach WeChat in the next one, which
        counts it there): it goes back to pending untouched, so the dispatchers together stay
        under the budget as WeChat counts it.
        """
        unit = claimed.unit
        counted_in = claimed.window + 1 if claimed.early else claimed.window
        window_end = counted_in + 1
        now = self.app.clock.time()
        if now < counted_in:
            if clock.wait(self.app.clock, self._stop, counted_in - now):
                return SendResult(unit.id, "pending", undo_attempt=1, last_error=unit.last_error,
                                  next_attempt_at=counted_in)  # fmt: skip
            now = self.app.clock.time()
        if now >= window_end or now + self._last_moments() >= window_end:
            return SendResult(
                unit.id,
                "pending",
                undo_attempt=1,
                last_error=unit.last_error,
                next_attempt_at=window_end,
            )
        found = sender_for(self.app, unit.kind)
        if found is None:  # claimed only with a sender: the registry cannot lose one
            return SendResult(unit.id, "failed", last_error="no sender")
        budget = found.budget
        started = time.monotonic()
        try:
            msgid = found.send(self.app, unit)
            self._timed(time.monotonic() - started)
            _metrics().sends.labels(budget, "sent").inc()
            return SendResult(unit.id, "sent", wechat_msgid=msgid)
        except WeChatInDoubtError as exc:
            _metrics().sends.labels(budget, "unknown").inc()
            return SendResult(unit.id, "unknown", last_error=str(exc))
        except WeChatUnavailableError as exc:
            _metrics().sends.labels(budget, "retry").inc()
            return self._later(unit, str(exc), now, _backoff(unit.attempts))
        except WeChatError as exc:
            _metrics().sends.labels(budget, f"error_{exc.errcode}").inc()
            if exc.errcode == 45066:
                return self._later(unit, str(exc), now, 61)
            if exc.errcode == 45011:
                return self._later(unit, str(exc), now, 60 - now % 60 + 1)
            if exc.errcode == 45009 and unit.lane != "alert":  # an alert cannot wait a day
                return self._later(unit, str(exc), now, _until_bank_midnight(now))
            return SendResult(unit.id, "failed", last_error=str(exc))
        except Exception as exc:  # a bug must not lose the unit: keep it, say why
            log.exception("sending unit %s failed", unit.id)
            return self._later(unit, f"internal error: {type(exc).__name__}", now, 30)

    def _later(self, unit: Unit, error: str, now: float, delay: float) -> SendResult:
        """Back to pending for a later attempt (WeChat answered: it did not accept the unit)."""
        if unit.attempts >= MAX_ATTEMPTS:
            gave_up = f"{error} (gave up after {unit.attempts} attempts)"
            return SendResult(unit.id, "failed", last_error=gave_up)
        return SendResult(unit.id, "pending", last_error=error, next_attempt_at=now + delay)

    def record(self, claimed: list[Claimed], results: list[SendResult]) -> None:
        """Record send results; the final-state hooks run in the same transaction."""
        store = self.app.store
        by_id = {c.unit.id: c.unit for c in claimed}
        with store.transaction():
            recorded = set(store.outbox.finish(results, self.holder, self.app.clock.time()))
            finalised(
                self.app,
                [
                    r.applied_to(by_id[r.id])
                    for r in results
                    if r.id in recorded and r.state in FINAL
                ],
            )

    def drain(
        self,
        *,
        follow: bool = False,
        wait_for_retries: bool = False,
        until: Callable[[], bool] | None = None,
        bar: ProgressBar | None = None,
        source: str | None = None,
        stop: threading.Event | None = None,
    ) -> BatchReport:
        """Send what is due. follow: forever (until stop); wait_for_retries: also wait for
        units whose next attempt is in the future; until: a condition that ends the run.

        Sends are pipelined: up to ``window`` units are in flight, and the dispatcher claims
        more (within the rate budget) as each answer comes, rather than waiting for a batch's
        slowest send; results are recorded as they come, several in one transaction.

        Waits for business time (the next due unit, the next rate-budget second) go through
        the clock (a FixedClock moves on instead); waits for new work are real time. bar, when
        given, advances by each unit (of source, when given) that reaches sent, failed or
        unknown. An interruption (Ctrl-C) stops the run where it is safe to: no more units are
        claimed, the answers of those in flight are awaited (5 s at most) and recorded, then
        KeyboardInterrupt is raised. A second Ctrl-C interrupts at once.
        """
        tally = _Tally()
        last_recover = 0.0
        stop = stop or threading.Event()
        with _interrupt_stops(stop) as interrupted:
            report = self._drain(follow, wait_for_retries, until, bar, source, stop, tally,
                                 last_recover)  # fmt: skip
        if interrupted.is_set():
            raise KeyboardInterrupt
        return report

    def _drain(
        self, follow: bool, wait_for_retries: bool, until: Callable[[], bool] | None,
        bar: ProgressBar | None, source: str | None, stop: threading.Event, tally: _Tally,
        last_recover: float,
    ) -> BatchReport:  # fmt: skip
        inflight: dict[Future[SendResult], Claimed] = {}
        unrecorded: list[tuple[Claimed, SendResult]] = []  # answers taken, not yet recorded
        spent_until = 0.0  # the budget is spent for this clock second: claim nothing before
        # units this run claimed and handed back untouched, their second gone by (``send``):
        # due again within a second, and still this run's to send, whether or not it waits
        # for retries (until this time)
        handed_back = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() - last_recover > 1.0:  # pacing, not business time
                    last_recover = time.monotonic()
                    self.recover()
                    if not follow and not inflight and self._paused_everything():
                        break
                claimed: list[Claimed] = []
                room = self.window - len(inflight)
                now = self.app.clock.time()
                # the budget was spent a moment ago: claim nothing in a second's last moments,
                # so that sends claimed under it are answered within it (the dispatchers
                # together stay under the budget also as WeChat counts the calls)
                recently_spent = spent_until <= now < spent_until + 2
                if recently_spent and 1 - now % 1 < self._last_moments():
                    spent_until = float(int(now) + 1)
                if room > 0 and now >= spent_until:
                    claimed = self.claim(room)
                    if not claimed and self._budget_spent:
                        spent_until = float(int(self.app.clock.time()) + 1)
                    for c in claimed:
                        inflight[self.pool.submit(self.send, c)] = c
                finished: list[tuple[Claimed, SendResult]] = []
                if inflight:
                    # block only when nothing more can be claimed now
                    timeout = 0.0 if claimed and room > len(claimed) else None
                    if timeout is None and self.app.clock.time() < spent_until and room > 0:
                        timeout = max(0.001, spent_until - self.app.clock.time())
                    done, _ = wait(inflight, timeout=timeout, return_when=FIRST_COMPLETED)
                    # kept where an interruption finds them until recorded (the finally)
                    unrecorded = finished = [(inflight[f], f.result()) for f in done]
                    for f in done:
                        del inflight[f]
                if finished:
                    self.record([c for c, _ in finished], [r for _, r in finished])
                    for _, r in finished:
                        if r.undo_attempt and r.next_attempt_at is not None:
                            handed_back = max(handed_back, r.next_attempt_at)
                unrecorded = []
                results, self._settled = self._settled + [r for _, r in finished], []
                sources = {c.unit.id: c.unit.source for c, _ in finished}
                for result in results:
                    tally.count(result, sources.get(result.id))
                if bar is not None:
                    ours = {c.unit.id for c, _ in finished if source in (None, c.unit.source)}
                    shown = [r for r in results if r.state in ("sent", "failed", "unknown")]
                    bar.advance(sum(1 for r in shown if source is None or r.id in ours))
                if results or claimed or inflight:
                    continue
                if until is not None and until():
                    break
                next_due = self.app.store.outbox.next_due_at(self.account)
                now = self.app.clock.time()
                if next_due is None:
                    if not follow and not self._others_sending():
                        break
                    stop.wait(0.2)  # new work, or another dispatcher's results: real time
                    continue
                if next_due <= now:
                    # the rate budget is spent, or what is due is paused: the next second
                    clock.wait(self.app.clock, stop, max(0.01, 1 - now % 1))
                    if not follow and self._paused_everything():
                        break
                    continue
                if not follow and not wait_for_retries and next_due > handed_back:
                    break
                clock.wait(self.app.clock, stop, min(1.0, next_due - now))
        finally:
            # interrupted: record the answers that came, also those taken from inflight whose
            # recording the interruption stopped (recording is idempotent); the rest is
            # handed back
            pairs = list(unrecorded)
            if inflight:
                done, _ = wait(inflight, timeout=5)
                pairs += [(inflight[f], f.result()) for f in done]
            if pairs:
                unique = list({c.unit.id: (c, r) for c, r in pairs}.values())
                self.record([c for c, _ in unique], [r for _, r in unique])
        return tally.report()

    def _others_sending(self) -> bool:
        rows = self.app.store.outbox.all(UnitFilter(state="sending", account=self.account), 1)
        return bool(rows)

    def _paused_everything(self) -> bool:
        """True when every due unit waits on a pause (so a one-off run can stop)."""
        now = self.app.clock.time()
        if self.app.store.outbox.due(now, 1, self.account):
            return False
        pending = self.app.store.outbox.all(UnitFilter(state="pending", account=self.account), 1)
        return bool(pending) and pending[0].next_attempt_at <= now


def dead_holders(app: AppContext, own: str | None = None) -> list[str]:
    """Dispatchers found dead (stale heartbeat, their process gone from this host) and holders
    of claims that are not registered at all (joins the caller's transaction)."""
    now = app.clock.time()
    host = socket.gethostname()
    store = app.store
    dead = []
    for row in store.outbox.dispatchers():
        if row.holder == own:
            continue
        stale = row.heartbeat_at < now - DEAD_AFTER_S
        gone = row.host == host and not _alive(row.pid)
        if stale or gone:
            dead.append(row.holder)
    return dead + [h for h in store.outbox.orphan_holders() if h != own]


def recover(app: AppContext, own: str | None = None) -> int:
    """Hand back the units of dispatchers found dead: each goes back to pending or becomes
    unknown by its kind's crash policy. Returns how many."""
    store = app.store
    with store.transaction():
        dead = dead_holders(app, own)
        stranded = store.outbox.stranded(dead)
        _hand_back(app, stranded, app.clock.time())
        store.outbox.forget([h for h in dead if h != own])
    return len(stranded)


def _hand_back(app: AppContext, units: list[Unit], now: float) -> None:
    """Claimed units whose sending stopped: to pending when their kind may send them again,
    else to unknown (final-state hooks run); joins the caller's transaction."""
    unknown = []
    for unit in units:
        error = None if _send_again(unit, now) else STRANDED
        state = "pending" if error is None else "unknown"
        if app.store.outbox.release(unit, state, error, now) and error is not None:
            unknown.append(replace(unit, state=state, last_error=error, claimed_by=None))
    finalised(app, unknown)


class _Tally:
    """A sending run's counts, as results come in."""

    def __init__(self) -> None:
        self.sent = 0
        self.retried = 0
        self.failures: list[BatchFailure] = []

    def count(self, result: SendResult, source: str | None = None) -> None:
        state = result.state
        what = f"unit {result.id}" + (f" ({source.replace(':', ' ')})" if source else "")
        error = str(result.last_error)
        if state == "sent":
            self.sent += 1
        elif state == "failed":
            self.failures.append(BatchFailure(what, error, wechat="WeChat" in error))
        elif state == "unknown":
            self.failures.append(BatchFailure(what, error, unknown=True))
        elif not result.undo_attempt:
            self.retried += 1

    def report(self) -> BatchReport:
        return report(self.sent, self.retried, tuple(self.failures))


def _send_again(unit: Unit, now: float) -> bool:
    """Whether a unit stranded mid-send may be sent again (its kind's crash policy)."""
    found = extensions.registry().senders(True).get(unit.kind)  # whichever area declared it
    if found is None or found.crash != "idempotent":
        return False
    window = found.dedup_window_s
    first = unit.first_attempt_at
    return window is None or (first is not None and first >= now - window)


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
) -> list[Unit]:
    require(app, "outbox.read", account)
    if state and state not in STATES:
        raise ValidationError(f"--state '{state}' is invalid: use {', '.join(STATES)}.")
    if lane and lane not in LANES:
        raise ValidationError(f"--lane '{lane}' is invalid: use {', '.join(LANES)}.")
    name = accounts.get(app, account).name if account else None
    return app.store.outbox.all(UnitFilter(state=state, lane=lane, account=name), limit)


def run(
    app: AppContext,
    account: str | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> OutboxRun:
    """Drain what is due (or keep dispatching with follow)."""
    require(app, "outbox.run", account)
    name = accounts.get(app, account).name if account else None
    started = time.monotonic()
    dispatcher = Dispatcher(app, name)
    dispatcher.start()
    try:
        report = dispatcher.drain(follow=follow, stop=stop)
    finally:
        dispatcher.stop()
    return OutboxRun(report, time.monotonic() - started, name)


def send_now(app: AppContext, account: str, source: str) -> BatchReport:
    """Send a source's due units at once, in this process (an agent's reply leaves as the agent
    presses enter, not at a dispatcher's next turn). The claim is the outbox's own, so a unit
    another dispatcher holds, a paused lane or a spent budget leave the unit to the others;
    nothing is sent twice. Called after the enqueueing transaction committed."""
    dispatcher = Dispatcher(app, account, threads=1, batch=8, source=source)
    dispatcher.start()
    try:
        return dispatcher.drain()
    finally:
        dispatcher.stop()


def retry(app: AppContext, unit_id: int, account: str | None = None) -> Unit:
    """Send an unknown or failed unit again (the operator has checked it was not delivered).

    outbox.retry is checked on the unit's own account (permissions.load_row)."""

    def missing() -> NotFoundError:
        return NotFoundError(f"no outbox unit {unit_id}. See bankwx outbox list.")

    load_row(
        app,
        "outbox.retry",
        lambda: app.store.outbox.get(unit_id),
        lambda u: u.account,
        target=f"outbox unit {unit_id}",
        missing=missing,
        account=account,
    )
    with app.store.transaction():
        unit = app.store.outbox.get(unit_id)
        if unit is None:
            raise missing()
        if unit.state not in ("unknown", "failed"):
            raise ValidationError(
                f"unit {unit_id} is {unit.state}: only unknown or failed units are retried."
            )
        verdict = _verdict(app, unit)  # its source's checks: one may say never again
        if isinstance(verdict, Cancel):
            raise ValidationError(f"unit {unit_id} is not sent again: {verdict.reason}.")
        app.store.outbox.retry(unit_id, app.clock.time())
        audit.record(app, "outbox.retry", str(unit_id), {"was": unit.state})
        retried = app.store.outbox.get(unit_id)
    if retried is None:
        raise missing()
    return retried


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
    now = app.clock.time()
    seen = set()
    for row in app.store.outbox.backlog(now):
        _metrics().backlog.labels(row.lane).set(row.pending)
        _metrics().oldest.labels(row.lane).set(max(0.0, row.oldest_s or 0.0))
        seen.add(row.lane)
    for lane in LANES:
        if lane not in seen:
            _metrics().backlog.labels(lane).set(0)
            _metrics().oldest.labels(lane).set(0)


def install(registry: Registry) -> None:
    """This area's declarations (bankwx_cli/extensions.py): its senders, late answers, job
    results."""
    registry.sender("custom", budget="/cgi-bin/message/custom/send", crash="at_most_once",
                    rate=100)(send_custom)  # fmt: skip
    registry.sender("template", budget="/cgi-bin/message/template/send", crash="idempotent",
                    rate=100, dedup_window_s=TEMPLATE_DEDUP_S)(send_template)  # fmt: skip
    # protocol sheet §7: mass 60 a minute
    registry.sender("mass", budget="/cgi-bin/message/mass/send", crash="idempotent", rate=1)(
        send_mass
    )
    registry.on_late(late_answer)
    registry.on_event("templatesendjobfinish", job_finished)


@contextlib.contextmanager
def _interrupt_stops(stop: threading.Event) -> Iterator[threading.Event]:
    """While a dispatcher drains on the main thread, Ctrl-C sets ``stop`` instead of raising
    KeyboardInterrupt wherever the main thread happens to be: an exception raised between a
    lock's acquisition and the block that releases it would leave the store's lock held and
    the sending threads waiting for it forever (the process then never exits). The event
    yielded tells whether it happened; a second Ctrl-C raises at once."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)

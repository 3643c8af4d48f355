"""The callback engine: verify, de-duplicate, route, answer, log.

``Engine`` is shared by every request of one receiver process. The server calls ``open`` (the
protocol work, microseconds), then ``process`` in a worker thread under the deadline, then
``respond``. The store decides which delivery of a message is processed, so retries are
handled once across workers and processes; the conversation log is masked before it is
written.
"""

from __future__ import annotations

import logging
import secrets as pysecrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, lru_cache, partial
from typing import TYPE_CHECKING, NamedTuple

from bankwx_cli import extensions
from bankwx_cli.clock import iso, iso_of
from bankwx_cli.domain import account_settings, accounts, actions, keywords, reports
from bankwx_cli.domain.masking import mask
from bankwx_cli.errors import NotFoundError
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.messages import InboundRow
from bankwx_cli.models.replies import ImageReply, NewsReply, Reply, TextReply, TransferReply
from bankwx_cli.wechat import callback
from bankwx_cli.wechat.callback import CallbackKeys, Inbound

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.storage.db import Writer
    from bankwx_cli.storage.engine import AnsweredRow, Claim

log = logging.getLogger(__name__)

RELOAD_S = 1.0  # CLI changes reach a running receiver within this (plus one request)
POLL_S = 0.02
DEDUP_KEEP_S = 48 * 3600
KEY_EVENTS = {
    "click",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
}
SILENT_EVENTS = {
    "unsubscribe",
    "view",
    "view_miniprogram",
    "templatesendjobfinish",
    "masssendjobfinish",
    "publishjobfinish",
    "kf_create_session",
    "kf_close_session",
    "kf_switch_session",
}
# The events ``_record_event`` records about the follower.
FOLLOWER_EVENTS = frozenset({"subscribe", "unsubscribe", "location"})
MEDIA_TYPES = {"image", "voice", "video", "shortvideo", "link", "miniprogrampage", "location"}
SENSITIVE_LOGGED = "[sensitive reply]"  # what the conversation log holds for a sensitive reply


@dataclass(frozen=True)
class Decision:
    """What the router decided: the reply (None: answer 'success'), the route and outcome.

    A ``sensitive`` reply is sent but never stored in clear: the conversation log records
    that a sensitive reply was sent, not its text, and no copy is kept for WeChat's retries.
    """

    reply: Reply | None
    route: str
    outcome: str = "replied"
    sensitive: bool = False


@dataclass
class Runtime:
    """One account as the receiver needs it, rebuilt when the configuration changes."""

    account: Account
    keys: CallbackKeys
    rules: list[keywords.Rule]
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def encrypts(self) -> bool:
        return self.account.mode != "plain"

    # Read once a configuration (a runtime is rebuilt when it changes), not once a message.

    @cached_property
    def default_reply(self) -> Decision:
        """The account's default reply, as the decision of a message no rule answers."""
        return Decision(TextReply(account_settings.text(self.account, "default_reply")),
                        route="default")  # fmt: skip

    @cached_property
    def welcome(self) -> str:
        return account_settings.text(self.account, "welcome")

    @cached_property
    def welcome_decision(self) -> Decision:
        """The decision of a follow that is no QR code's: the welcome."""
        return Decision(TextReply(self.welcome), route="event:subscribe")

    @cached_property
    def rule_decisions(self) -> dict[int, Decision]:
        """The decision of each rule with a static reply, by rule id."""
        return {r.id: Decision(r.reply, route=f"rule:{r.id}") for r in self.rules
                if r.reply is not None}  # fmt: skip


# Engine hooks, follower-state lookups and late-answer hooks are declared by areas through the
# registry (bankwx_cli/extensions.py); an Engine takes its tables from it once, when built.
Hook = extensions.Hook
LateHook = extensions.LateHook


class Ticket:
    """Shared by the request (which may give up at the deadline) and the handler thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "running"  # running -> done | abandoned

    def abandon(self) -> bool:
        """The request gives up; False when the handler already finished in time."""
        with self._lock:
            if self._state == "running":
                self._state = "abandoned"
                return True
            return False

    def complete(self) -> bool:
        """The handler finished; False when the request had already given up.

        Idempotent (a write unit that runs twice asks twice): once done, always True.
        """
        with self._lock:
            if self._state == "running":
                self._state = "done"
            return self._state == "done"


class _QuickWrite:
    """One quick answer's write: prepared on the loop (``Engine.answer``), written with its
    group by ``Engine._write_group``, finished by its unit."""

    __slots__ = ("counted", "decision", "handling_ms", "in_time", "inbound", "key",
                 "message_id", "out_written", "plain", "recorded", "row", "runtime", "started",
                 "ticket")  # fmt: skip

    def __init__(
        self, row: InboundRow, plain: bytes | None, decision: Decision, ticket: Ticket,
        started: float, key: tuple[str, str] | None, inbound: Inbound, runtime: Runtime,
    ) -> None:  # fmt: skip
        self.row, self.plain, self.decision, self.ticket = row, plain, decision, ticket
        self.started, self.inbound, self.runtime = started, inbound, runtime
        self.counted = False  # its outcome counted in the reports' roll-ups by _write_group
        self.key = key  # (account, openid) of a message, for the lookups; None for an event
        self.in_time = False
        self.handling_ms = 0.0  # set by _write_group, when the group's write starts
        self.message_id: int | None = None  # None: the key existed (the unit claims again)
        self.out_written = False  # the reply's log entry written with its row
        self.recorded = False  # a follow recorded in follower_state by ``_write_group``


class Result(NamedTuple):
    """What the request answers: a plaintext reply (to encrypt) or success. A named tuple:
    one is made a callback."""

    plain_reply: bytes | None
    route: str
    outcome: str
    retry: bool = False


class Engine:
    def __init__(
        self,
        app: AppContext,
        deadline: float = 4.0,
        replay_window: float = 300.0,
        lookups: tuple[extensions.FollowerLookup, ...] | None = None,
    ) -> None:
        """``lookups``: the follower-state lookups (default: the registry's)."""
        self.app = app
        self.deadline = deadline
        self.replay_window = max(60.0, replay_window)
        self._lock = threading.Lock()
        self._version: str | None = None
        self._checked = 0.0
        self._runtimes: dict[str, Runtime] = {}
        registry, tests = extensions.registry(), extensions.tests_enabled(app)
        self._message_hooks = registry.message_hooks(tests)
        self._event_hooks = registry.event_hooks(tests)
        self._late_hooks = registry.late_hooks(tests)
        self._lookups = registry.follower_lookups(tests) if lookups is None else lookups
        self._actions = registry.actions(tests)
        # Narrowed lookups: what the writer's current group may be taken by (see _prefetch).
        self._narrows = any(lookup.candidates for lookup in self._lookups)
        self._prefetched: frozenset[tuple[str, str]] = frozenset()
        self._may_take: list[set[tuple[str, str]] | None] = [None] * len(self._lookups)
        # the union of ``_may_take`` (None: a lookup not narrowed, which may take any message)
        self._may_take_any: set[tuple[str, str]] | None = None
        # Reports' roll-ups, counted in the write units (off only for a benchmark's baseline);
        # each account's menu deploys, to count a click under the menu it was made on.
        self._counting = not app.settings.bench_no_rollups
        self._deploys: dict[str, list[tuple[str, int]]] = {}

    # --- configuration ----------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Reload accounts and rules when the store's configuration version changed."""
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_S:
            return
        with self._lock:
            self._checked = now
            version = self.app.store.config_version()
            if version == self._version and not force:
                return
            runtimes: dict[str, Runtime] = {}
            deploys: dict[str, list[tuple[str, int]]] = {}
            for account in self.app.store.accounts.all():
                opened = accounts.secrets(self.app, account)
                keys = CallbackKeys(
                    token=opened.token.reveal(),
                    aes_key=opened.aes_key.reveal() if opened.aes_key else None,
                    appid=account.appid,
                    original_id=account.original_id,
                    mode=account.mode,
                )
                rules = [
                    keywords.compiled(r)
                    for r in self.app.store.keyword_rules.for_account(account.name)
                ]
                overrides = account_settings.texts_of(account)
                runtimes[account.name] = Runtime(
                    account, keys, rules, overrides if isinstance(overrides, dict) else {}
                )
                deploys[account.name] = self.app.store.menu_versions.deploy_times(account.name)
            self._runtimes, self._deploys = runtimes, deploys
            self._version = version
            log.info("configuration version %s: %d accounts", version, len(runtimes))

    def serves(self, name: str) -> bool:
        """Whether the store holds an account of this name (as last loaded)."""
        return name in self._runtimes

    def runtime(self, name: str) -> Runtime:
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise NotFoundError(f"no account named '{name}'")
        return runtime

    # --- the protocol ------------------------------------------------------------------------

    def verify(self, runtime: Runtime, query: Mapping[str, str]) -> str:
        return callback.verify_url(runtime.keys, query)

    def open(self, runtime: Runtime, query: Mapping[str, str], body: bytes) -> Inbound:
        return callback.open_callback(
            runtime.keys, query, body, self.app.clock.time(), self.replay_window
        )

    def respond(self, runtime: Runtime, result: Result, query: Mapping[str, str]) -> bytes:
        """The response body: the reply (encrypted in compatible and safe mode) or success."""
        if result.plain_reply is None:
            return callback.reply_success()
        if not runtime.encrypts:
            return result.plain_reply
        nonce = query.get("nonce", "")
        if not nonce.isalnum():
            nonce = pysecrets.token_hex(8)
        return callback.seal_reply(
            runtime.keys, result.plain_reply, timestamp=int(self.app.clock.time()), nonce=nonce
        )

    # --- processing ----------------------------------------------------------------------------
    #
    # Every write of the hot path goes through the store's group-commit writer: a unit of work
    # runs inside a transaction shared with other callbacks' units, and its result is handed
    # back only after the COMMIT, so no reply leaves before its rows are committed.
    #
    # - quick path (``quick`` + ``answer``): a message that no hook wants, answered by a static
    #   keyword reply or the default. The decision needs no I/O, so it is made on the caller's
    #   thread first, and the claim and the outcome are one write: a first delivery's row is
    #   inserted done, with its reply and its outbound row. A conflict means another delivery
    #   holds the message: the decision is dropped and the stored reply is answered (or, while
    #   that delivery runs elsewhere, ``wait_first`` waits for it).
    # - handler path (``process``, in a worker thread): the claim is committed before the
    #   handler runs, so that one handler runs per message across processes; its outcome is
    #   the second write.
    #
    # Follower-state lookups (registered by areas, e.g. "is this follower talking to an
    # agent?") run for messages only, inside the write unit that claims the message (both
    # paths), after the claim succeeded: a retry never runs them. A lookup that takes the
    # message replaces the quick decision (or the handler's routing) in that same unit. A
    # lookup with ``candidates`` is asked first once per group commit, at the start of its
    # transaction (``_prefetch``), which of the group's followers it may take; it then runs
    # only for those, so a message that no lookup takes pays a share of one query per group.
    # Reading the group's state before its units write is a valid order: the units of a group
    # commit together and none answers before the COMMIT, so they are concurrent.
    #
    # In both, whether the answer is in time is settled inside the outcome's write: a request
    # that gave up at the deadline has answered success, and the late hook enqueues the answer
    # in that same transaction.

    def quick(self, runtime: Runtime, inbound: Inbound) -> Decision | None:
        """The decision when it needs no I/O and no hook wants the message or event, else None.

        Quick: a static keyword reply, the default reply, a menu key answered by a static rule
        (or by nothing), the welcome, and the events the engine only records. Not quick: a
        message type or event with hooks, and a rule with an action (it may call the bank)."""
        if inbound.msg_type == "event":
            if inbound.event in self._event_hooks:
                return None
            return self._event_decision(runtime, inbound, run_actions=False)
        if inbound.msg_type in self._message_hooks:
            return None
        found = self._route_message(runtime, inbound)
        return found if isinstance(found, Decision) else None

    @cached_property
    def _writer(self) -> Writer:
        """The store's group-commit writer, kept: every unit the engine queues goes to it (three
        property reads a callback otherwise)."""
        return self.app.store.messages.writer

    def answer(
        self,
        runtime: Runtime,
        inbound: Inbound,
        decision: Decision,
        ticket: Ticket,
        done: Callable[[Result | Claim | None, BaseException | None], None],
        wake: bool = True,
    ) -> None:
        """Queue a quick decision's write; done(value, error) is called after its commit.

        The value is the Result to answer, or, for a retry of a message whose handler runs
        elsewhere, its Claim (then ``wait_first``). Called on any thread; never blocks. With
        ``wake=False`` the writer is not woken: the caller calls ``wake()`` once for all it
        queued.
        """
        at = iso_of(self.app.clock.time())
        plain = self.render(runtime, inbound, decision.reply)
        write = _QuickWrite(
            self._in_row(runtime, inbound, at), plain, decision, ticket, time.monotonic(),
            None if inbound.msg_type == "event" else (runtime.account.name, inbound.openid),
            inbound, runtime,
        )  # fmt: skip
        # a partial, not a closure: no cells to make and free a message
        self._writer.submit(
            partial(self._quick_unit, write), done, (self._write_group, write), wake
        )

    def _quick_unit(self, write: _QuickWrite) -> Result | Claim:
        """A quick answer's unit: the message's row (and its reply's) were written by
        ``_write_group``, at the start of this unit's transaction; what is left is what only
        this unit can tell."""
        runtime, inbound, decision = write.runtime, write.inbound, write.decision
        plain, at, store = write.plain, write.row.at, self.app.store
        event = inbound.msg_type == "event"
        lookups = () if event else self._lookups  # follower-state lookups take messages only
        in_time, message_id = write.in_time, write.message_id
        if message_id is None:  # another delivery holds the message
            row = write.row
            claim = store.messages.claim_again(row, self._stale_before())
            if self._counting:
                reports.count_retry_of(store.rollups, claim.id)
            if not claim.first:
                return self._replayed(claim)
            message_id = claim.id  # a claim whose process died: this delivery takes it
            if event:
                self._record_event(runtime, inbound, at)
            taken = self._look_up(runtime, inbound) if lookups else None
            chosen = taken or decision
            return self._finish(runtime, inbound, message_id, chosen,
                                self.render(runtime, inbound, chosen.reply) if taken else plain,
                                in_time, write.handling_ms)  # fmt: skip
        if event:
            if not write.recorded:
                self._record_event(runtime, inbound, at)
        elif lookups and not write.out_written:
            taken = self._look_up(runtime, inbound)
            if taken is not None:
                return self._finish(runtime, inbound, message_id, taken,
                                    self.render(runtime, inbound, taken.reply), in_time,
                                    write.handling_ms, claimed=False)  # fmt: skip
        outcome = decision.outcome
        if not in_time:
            outcome = self._late(runtime, inbound, message_id, decision)
            store.messages.set_outcome(message_id, outcome)
        if decision.reply is not None and not write.out_written:
            store.messages.log_reply(message_id, *_logged(decision))
        if self._counting and not write.counted:
            self._count_settled(runtime, inbound, message_id, at, claimed=False)
        return Result(plain if in_time else None, decision.route, outcome)

    def wake(self) -> None:
        """Write what ``answer(..., wake=False)`` queued: on the calling thread (the event
        loop's) when the store is free at once, else by the store's writer thread
        (``Writer.run_queued``)."""
        self._writer.run_queued()

    def process(self, runtime: Runtime, inbound: Inbound, ticket: Ticket) -> Result:
        """Claim the message, route it (first delivery) or wait for the first one (retries).

        Blocks: run it in a worker thread, under the deadline.
        """
        started = time.monotonic()
        writer = self._writer
        row = self._in_row(runtime, inbound, iso_of(self.app.clock.time()))
        look = bool(self._lookups) and inbound.msg_type != "event"

        def claim_unit() -> tuple[Claim, Decision | None]:
            store = self.app.store
            claim = store.messages.claim(row, self._stale_before())
            if self._counting:
                if claim.first and claim.deliveries == 1:  # inserted: counted as unanswered
                    reports.count_claim(store.rollups, runtime.account.name, row.at,
                                        inbound.msg_type, inbound.event)  # fmt: skip
                else:  # another delivery of a message the store holds
                    reports.count_retry_of(store.rollups, claim.id)
            return claim, self._look_up(runtime, inbound) if look and claim.first else None

        claim, taken = writer.call(claim_unit, self._prepare(runtime, inbound) if look else None)
        if not claim.first:
            found = self._replayed(claim)
            if isinstance(found, Result):
                return found
            return self.wait_first(runtime, inbound, ticket, found, started)
        return self._handle(runtime, inbound, ticket, claim, taken, started)

    def _handle(
        self, runtime: Runtime, inbound: Inbound, ticket: Ticket, claim: Claim,
        taken: Decision | None, started: float,
    ) -> Result:  # fmt: skip
        """Route a message this delivery holds the claim of, and record the outcome."""
        try:
            decision = taken or self.decide(runtime, inbound, deadline=started + self.deadline)
        except Exception:
            log.exception("handler failed for %s %s", runtime.account.name, inbound.dedup_key())
            decision = Decision(
                TextReply(_default_text(runtime)), route="error", outcome="handler_error"
            )
        plain = self.render(runtime, inbound, decision.reply)
        elapsed_ms = (time.monotonic() - started) * 1000
        result: Result = self._writer.call(
            lambda: self._finish(
                runtime, inbound, claim.id, decision, plain, ticket.complete(), elapsed_ms
            )
        )
        return result

    def flush(self) -> None:
        """Wait until every write queued so far is committed (blocks; at shutdown)."""
        self._writer.call(lambda: None)

    def wait_first(
        self, runtime: Runtime, inbound: Inbound, ticket: Ticket, claim: Claim, started: float
    ) -> Result:
        """A retry of a message whose first delivery is being handled: wait for its answer
        (polling the store, which other processes write too) until the deadline. When the
        claim goes stale meanwhile (the process handling it died: WeChat's next delivery may
        come before the claim is old enough to be taken at once), this delivery takes the
        message over and handles it, under ``ticket``. Blocks: run it in a worker thread."""
        messages, writer = self.app.store.messages, self._writer
        look = bool(self._lookups) and inbound.msg_type != "event"
        current = claim
        while current.state != "done":
            if time.monotonic() - started > self.deadline:
                return Result(None, "retry", "retry_pending", retry=True)
            if current.state == "processing" and (current.claimed_at or 0) < self._stale_before():
                seen = current

                def take_over(seen: Claim = seen) -> tuple[bool, Decision | None]:
                    if not messages.take_over(seen.id, seen.claimed_at, self.app.clock.time()):
                        return False, None  # another delivery took it first
                    return True, self._look_up(runtime, inbound) if look else None

                took, taken = writer.call(take_over)
                if took:
                    log.warning("took over message %s: its handler's process is gone", seen.id)
                    return self._handle(runtime, inbound, ticket, seen, taken, started)
            time.sleep(POLL_S)
            current = messages.state_of(claim.id)
        return Result(current.reply, "retry", "retry_replayed", retry=True)

    def _replayed(self, claim: Claim) -> Result | Claim:
        if claim.state == "done":
            return Result(claim.reply, "retry", "retry_replayed", retry=True)
        return claim

    def _finish(
        self, runtime: Runtime, inbound: Inbound, message_id: int, decision: Decision,
        plain: bytes | None, in_time: bool, elapsed_ms: float, claimed: bool = True,
    ) -> Result:  # fmt: skip
        """Record a claimed message's outcome (inside the writer's transaction). ``claimed``:
        its claim counted it as unanswered (the handler path), which its outcome now moves."""
        outcome = decision.outcome if in_time else self._late(runtime, inbound, message_id,
                                                              decision)  # fmt: skip
        answered = plain if in_time else None  # a retry of a late message gets success
        # a sensitive reply is answered but never kept in clear (its retries get success)
        stored = None if decision.sensitive else answered
        self.app.store.messages.finish(
            message_id, stored, decision.route, outcome, elapsed_ms,
            None if decision.reply is None else _logged(decision),
        )  # fmt: skip
        if self._counting:
            self._count_settled(runtime, inbound, message_id, None, claimed)
        return Result(answered, decision.route, outcome)

    def _count_settled(
        self, runtime: Runtime, inbound: Inbound, message_id: int, at: str | None,
        claimed: bool,
    ) -> None:  # fmt: skip
        """Count the outcome a unit settled, as stored (read back in the unit)."""
        store = self.app.store
        name = runtime.account.name
        version = 0
        if inbound.event in reports.MENU_EVENTS:
            version = reports.deployed_at(self._deploys.get(name, ()),
                                          at or iso(self.app.clock.now()))  # fmt: skip
        reports.count_outcome_of(
            store.rollups, message_id, key=inbound.event_key, menu_version=version,
            qr_scene=inbound.scene if inbound.event == "subscribe" else None, claimed=claimed,
        )  # fmt: skip

    def log_callback(
        self, runtime: Runtime, inbound: Inbound, result: Result, elapsed_ms: float
    ) -> None:
        """The one log line per callback (info): account, key, route, outcome, milliseconds."""
        if log.isEnabledFor(logging.INFO):
            log.info(
                "callback account=%s key=%s route=%s outcome=%s ms=%.1f",
                runtime.account.name, inbound.dedup_key(), result.route, result.outcome,
                elapsed_ms,
            )  # fmt: skip

    def _in_row(self, runtime: Runtime, inbound: Inbound, at: str) -> InboundRow:
        """The message's log row. Only a follower's free text is masked: an event's key (a menu
        key, a VIEW URL, a QR scene) is the account's own, logged as sent."""
        text = _inbound_text(inbound)
        return InboundRow(
            runtime.account.name, inbound.openid, inbound.msg_type, inbound.event,
            text if inbound.msg_type == "event" else mask(text), inbound.msg_id,
            inbound.dedup_key(), at, self.app.clock.time(),
        )  # fmt: skip

    def _stale_before(self) -> float:
        return self.app.clock.time() - (self.deadline + 2.0)

    def _late(self, runtime: Runtime, inbound: Inbound, message_id: int, decision: Decision) -> str:
        """Every late-answer hook runs (in order); the first outcome one returns is recorded."""
        if decision.reply is None:
            return "late_silent"
        outcome = None
        for hook in self._late_hooks:
            found = hook(self.app, runtime, inbound, message_id, decision)
            outcome = outcome or found
        return outcome or "late"

    def _write_group(self, writes: list[_QuickWrite]) -> None:
        """Writer thread, start of a group's transaction: the rows of every quick answer in the
        group, each table's in one multi-row INSERT (a few, for a large group), before the
        units run. Whether each answer is in time is settled here (inside the write that
        records it); an answer that is late is written without its reply, and its unit records
        the late outcome. A reply's log entry is written in its row too, unless a follower-state
        lookup may take the message (its unit decides) or the answer is late. A row whose key
        exists, in the store or earlier in the group, is left to its unit (``claim_again``).
        """
        if self._narrows:
            self._prefetch([w.key for w in writes if w.key is not None])
        now = time.monotonic()
        rows: list[AnsweredRow] = []
        replies: list[bytes | None] = []
        takes: list[bool] = []  # a follower-state lookup may take it (its unit decides)
        for w in writes:
            w.in_time = in_time = w.ticket.complete()
            may_take = self._lookup_may_take(w.key)
            takes.append(may_take)
            r = w.row
            w.handling_ms = (now - w.started) * 1000
            decision = w.decision
            reply = decision.reply
            # the reply's log entry, unless the answer is late or a lookup may take the
            # message (its unit writes it then), or the reply is sensitive (likewise)
            w.out_written = logs = (
                reply is not None and in_time and not decision.sensitive and not may_take
            )
            rows.append((
                r.account, r.openid, r.msg_type, r.event, r.content, r.msg_id, r.dedup_key,
                decision.route, decision.outcome, w.handling_ms, r.at, r.claimed_at,
                *(_logged(decision) if logs else _UNLOGGED),
            ))  # fmt: skip
            replies.append(w.plain if in_time else None)
        store = self.app.store
        counting = self._counting
        settled: dict[reports.Settled, list[float]] = {}
        ids = store.messages.insert_answered_many(rows, replies)
        for w, message_id, may_take in zip(writes, ids, takes, strict=True):
            w.message_id = message_id
            if message_id is None:
                w.out_written = False
                continue  # its unit claims it again
            if not w.in_time:
                continue  # its unit records the late outcome (and counts)
            if counting and not may_take:  # its outcome is final: count it here
                inbound, row, decision = w.inbound, w.row, w.decision
                event = inbound.event
                outcome = reports.outcome_of(
                    row.account, row.at, inbound.msg_type, event, inbound.event_key,
                    decision.route, decision.outcome,
                    reports.deployed_at(self._deploys.get(row.account, ()), row.at)
                    if event in reports.MENU_EVENTS else 0,
                    inbound.scene,
                )  # fmt: skip
                times = settled.get(outcome)
                if times is None:
                    settled[outcome] = [w.handling_ms]
                else:
                    times.append(w.handling_ms)
                w.counted = True
        self._record_follows(writes)
        if settled:
            reports.count_outcomes(store.rollups, settled)

    def _record_follows(self, writes: list[_QuickWrite]) -> None:
        """The group's first follows recorded in follower_state together (``_record_event``
        of each, a few statements for them all), unless the group also holds another event
        about one of those followers: then each unit records its own, in the group's order."""
        follows = [w for w in writes if w.message_id is not None and w.inbound.event == "subscribe"]
        if not follows:
            return
        followers = {(w.row.account, w.inbound.openid) for w in follows}
        if any(w.inbound.event in FOLLOWER_EVENTS and w.inbound.event != "subscribe"
               and (w.row.account, w.inbound.openid) in followers for w in writes):  # fmt: skip
            return
        self.app.store.follower_state.followed_many(
            [(w.row.account, w.inbound.openid, w.row.at, w.inbound.scene or None) for w in follows]
        )
        for w in follows:
            w.recorded = True

    def _lookup_may_take(self, key: tuple[str, str] | None) -> bool:
        """Whether a follower-state lookup may take this message (as ``_look_up`` decides)."""
        if key is None or not self._lookups:
            return False
        if key not in self._prefetched:
            return True
        anyone = self._may_take_any
        return anyone is None or key in anyone

    def _prepare(
        self, runtime: Runtime, inbound: Inbound
    ) -> tuple[Callable[[list[tuple[str, str]]], None], tuple[str, str]] | None:
        """The writer's prepare entry of a unit that looks up (None: no lookup narrows)."""
        if not self._narrows:
            return None
        return self._prefetch, (runtime.account.name, inbound.openid)

    def _prefetch(self, keys: list[tuple[str, str]]) -> None:
        """Writer thread, start of a group's transaction: which of the group's followers each
        narrowed lookup may take (one query per lookup and account). A failing query leaves
        its lookup un-narrowed: it then runs for every message, as without candidates."""
        openids: dict[str, list[str]] = {}
        for account, openid in keys:
            openids.setdefault(account, []).append(openid)
        may_take: list[set[tuple[str, str]] | None] = []
        runtimes = self._runtimes
        for lookup in self._lookups:
            found: set[tuple[str, str]] | None = None
            if lookup.candidates is not None:
                try:
                    found = {
                        (account, taken)
                        for account, group in openids.items()
                        if account in runtimes
                        for taken in lookup.candidates(self.app, runtimes[account].account, group)
                    }
                except Exception:
                    log.exception("follower lookup candidates failed")
                    found = None
            may_take.append(found)
        self._may_take = may_take
        narrowed = [found for found in may_take if found is not None]
        self._may_take_any = set().union(*narrowed) if len(narrowed) == len(may_take) else None
        self._prefetched = frozenset(keys)

    def _look_up(self, runtime: Runtime, inbound: Inbound) -> Decision | None:
        """The first follower-state lookup that takes the message (inside the write unit)."""
        key = (runtime.account.name, inbound.openid)
        narrowed = key in self._prefetched
        for lookup, may_take in zip(self._lookups, self._may_take, strict=True):
            if narrowed and may_take is not None and key not in may_take:
                continue
            try:
                found = lookup.take(self.app, runtime, inbound)
            except Exception:
                log.exception("follower lookup failed for %s", inbound.dedup_key())
                continue
            if found is not None:
                return found
        return None

    def render(self, runtime: Runtime, inbound: Inbound, reply: Reply | None) -> bytes | None:
        if reply is None:
            return None
        return callback.render_reply(
            runtime.keys,
            inbound,
            reply,
            encrypt=False,
            timestamp=int(self.app.clock.time()),
            nonce="0",
        )

    # --- routing -------------------------------------------------------------------------------

    def decide(
        self, runtime: Runtime, inbound: Inbound, dry: bool = False, deadline: float | None = None
    ) -> Decision:
        """Route: events (their hooks, then the engine's own handling); messages (their hooks,
        then keyword rules, then the default reply). Follower-state lookups ran before, in the
        claim's write unit. ``deadline`` (time.monotonic()) is what actions see as time left.

        With dry, nothing is written (``keyword test``) and hooks are skipped.
        """
        if dry:
            return self._decide_dry(runtime, inbound)
        if inbound.msg_type == "event":
            return self._event(runtime, inbound, deadline)
        for hook in self._message_hooks.get(inbound.msg_type, ()):
            found = hook(self.app, runtime, inbound)
            if found is not None:
                return found
        routed = self._route_message(runtime, inbound)
        if isinstance(routed, Decision):
            return routed
        return self._answer(runtime, inbound, routed, inbound.content, deadline)

    def _route_message(self, runtime: Runtime, inbound: Inbound) -> Decision | keywords.Rule:
        """A message's decision, or the keyword rule whose action must run to make it."""
        if inbound.msg_type == "text":
            rule = keywords.first_match(runtime.rules, inbound.content, click=False)
            if rule is None:
                return runtime.default_reply
            if rule.reply is not None:
                return runtime.rule_decisions[rule.id]
            return rule
        if inbound.msg_type in MEDIA_TYPES:
            return runtime.default_reply
        return Decision(None, route=f"unknown:{inbound.msg_type}", outcome="unknown_type")

    def _decide_dry(self, runtime: Runtime, inbound: Inbound) -> Decision:
        click = inbound.msg_type == "event"
        text = inbound.event_key if click else inbound.content
        rule = keywords.first_match(runtime.rules, text, click=click)
        if rule is not None:
            if rule.reply is not None or rule.action in ("transfer_agent", "help", "welcome"):
                return self._answer(runtime, inbound, rule, text)
            return Decision(None, route=f"rule:{rule.id}:action:{rule.action}", outcome="action")
        if click:
            return Decision(None, route="event:click", outcome="unhandled_key")
        return Decision(TextReply(_default_text(runtime)), route="default")

    def _event(self, runtime: Runtime, inbound: Inbound, deadline: float | None) -> Decision:
        for hook in self._event_hooks.get(inbound.event, ()):
            found = hook(self.app, runtime, inbound)
            if found is not None:
                return found
        self._record_event(runtime, inbound, iso(self.app.clock.now()))
        decision = self._event_decision(runtime, inbound, deadline)
        assert decision is not None  # noqa: S101 - actions run: there is always one
        return decision

    def _record_event(self, runtime: Runtime, inbound: Inbound, at: str) -> None:
        """What the engine records of an event about the follower (follow, unfollow, location),
        in the caller's write (the quick path's unit, or the handler's)."""
        event, state, name = inbound.event, self.app.store.follower_state, runtime.account.name
        if event == "subscribe":
            state.followed(name, inbound.openid, at, inbound.scene or None)
        elif event == "unsubscribe":
            state.unfollowed(name, inbound.openid, at)
        elif event == "location":
            lat = _float(inbound.fields.get("Latitude"))
            lng = _float(inbound.fields.get("Longitude"))
            state.located(name, inbound.openid, lat, lng, at)

    def _event_decision(
        self, runtime: Runtime, inbound: Inbound, deadline: float | None = None,
        run_actions: bool = True,
    ) -> Decision | None:  # fmt: skip
        """The engine's own answer to an event (its hooks declined it); None when a menu key's
        rule has an action and ``run_actions`` is false."""
        event = inbound.event
        if event == "subscribe":
            if not inbound.scene:
                return runtime.welcome_decision
            return Decision(TextReply(runtime.welcome),
                            route=f"event:subscribe:qrscene={inbound.scene}")  # fmt: skip
        if event in ("unsubscribe", "location"):
            return Decision(None, route=f"event:{event}", outcome="recorded")
        if event in KEY_EVENTS:
            rule = keywords.first_match(runtime.rules, inbound.event_key, click=True)
            if rule is None:
                return Decision(None, route=f"event:{event}", outcome="unhandled_key")
            if rule.reply is None and not run_actions:
                return None
            return self._answer(runtime, inbound, rule, inbound.event_key, deadline)
        if event == "scan":
            return Decision(None, route=f"event:scan:scene={inbound.scene}", outcome="recorded")
        if event in SILENT_EVENTS:
            return Decision(None, route=f"event:{event}", outcome="recorded")
        return Decision(None, route=f"event:{event}", outcome="ignored")

    def _answer(
        self, runtime: Runtime, inbound: Inbound, rule: keywords.Rule, text: str,
        deadline: float | None = None,
    ) -> Decision:  # fmt: skip
        if rule.reply is not None:
            return runtime.rule_decisions[rule.id]  # every rule is one of runtime.rules
        assert rule.action is not None  # noqa: S101 - a rule has a reply or an action
        found = self._actions.get(rule.action)
        if found is None:
            return Decision(TextReply(_default_text(runtime)), route=f"rule:{rule.id}",
                            outcome="unknown_action")  # fmt: skip
        context = actions.ActionContext(
            self.app, runtime.account, inbound.openid, text, actions.argument(found, rule.arg),
            inbound, deadline,
        )  # fmt: skip
        reply = found.fn(context)
        return Decision(reply, route=f"rule:{rule.id}:action:{rule.action}",
                        outcome="replied" if reply else "silent",
                        sensitive=found.sensitive)  # fmt: skip

    # --- maintenance ---------------------------------------------------------------------------

    def forget_old_keys(self) -> int:
        """Clear de-duplication keys older than 48 hours, in short batches."""
        before = iso(self.app.clock.now() - timedelta(seconds=DEDUP_KEEP_S))
        total = 0
        while True:
            n = self.app.store.messages.forget_keys_before(before)
            total += n
            if n == 0:
                return total


def dry_route(
    app: AppContext, account: str | None, text: str | None, click: str | None
) -> keywords.DryRoute:
    """Which rule answers text (or a menu key) and with what, without WeChat or writes."""
    from bankwx_cli.domain.permissions import require
    from bankwx_cli.errors import ValidationError

    require(app, "keyword.read", account)
    if (text is None) == (click is None):
        raise ValidationError("give TEXT or --click KEY (one of them).")
    acct = accounts.resolve(app, account)
    rules = [keywords.compiled(r) for r in app.store.keyword_rules.for_account(acct.name)]
    keys = CallbackKeys(
        token="dryrun",  # noqa: S106 - never used to sign
        aes_key=None,
        appid=acct.appid,
        original_id=acct.original_id,
        mode="plain",
    )
    overrides = account_settings.texts_of(acct)
    runtime = Runtime(acct, keys, rules, overrides if isinstance(overrides, dict) else {})
    inbound = Inbound(
        msg_type="event" if click is not None else "text",
        event="click" if click is not None else "",
        openid="dry-run",
        to=acct.original_id,
        create_time=int(app.clock.time()),
        msg_id="",
        content=text or click or "",
        event_key=click or "",
        scene="",
        fields={},
        encrypted=False,
    )
    decision = Engine(app).decide(runtime, inbound, dry=True)
    rule_id = decision.route.split(":")[1] if decision.route.startswith("rule:") else None
    matched = next((r for r in rules if str(r.id) == rule_id), None)
    return keywords.DryRoute(
        input=text if text is not None else f"click:{click}",
        route=decision.route,
        outcome=decision.outcome,
        rule=matched,
        reply=decision.reply,
    )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _default_text(runtime: Runtime) -> str:
    return account_settings.text(runtime.account, "default_reply")


def _inbound_text(inbound: Inbound) -> str:
    if inbound.msg_type == "text":
        return inbound.content
    if inbound.msg_type == "event":
        return inbound.event_key
    if inbound.msg_type == "location":
        f = inbound.fields
        return f"{f.get('Location_X', '')},{f.get('Location_Y', '')} {f.get('Label', '')}".strip()
    if inbound.msg_type == "link":
        return inbound.fields.get("Url", "")
    return inbound.fields.get("MediaId", "")


@lru_cache(maxsize=1024)  # replies repeat: a rule's text, the default reply
def _masked(text: str) -> str:
    return mask(text)


def _reply_text(reply: Reply | None) -> str:
    if isinstance(reply, TextReply):
        return reply.content
    if isinstance(reply, NewsReply):
        return reply.article.title
    if isinstance(reply, ImageReply):
        return reply.media_id
    if isinstance(reply, TransferReply):
        return reply.kf_account or ""
    return ""


_UNLOGGED = (None, None)  # a row whose reply's log entry its unit writes, or that has none


def _logged(decision: Decision) -> tuple[str, str]:
    """What the conversation log shows of a decision's reply: its type and text (masked; a
    sensitive reply only as ``SENSITIVE_LOGGED``)."""
    reply = decision.reply
    return (
        reply.kind if reply else "success",
        SENSITIVE_LOGGED if decision.sensitive else _masked(_reply_text(reply)),
    )

"""`bankwx agent console`: the agent's screen (Textual; this module alone imports it).

The queue, the agent's own sessions and the selected conversation, refreshed from the store
every second (the session tables: the log has no per-follower index); the agent's status, the
time, and what the follower's customer-service window still allows. The reply line sends with
Enter, through the same function as ``bankwx agent reply`` (checked against the window, enqueued
in the agent lane, sent at once); while the agent types, the follower sees WeChat's typing
indicator (domain/agent_typing.py). Like every ``bankwx serve``, the console runs the registry's
periodic work (assignment, timeouts, idle sessions) while it is open.

Keys: F2 take (the queue's highlighted follower, else the longest waiting), F3 transfer, F4
close, F5 next status, Enter on a session shows it, Ctrl+Q quits. The reply line also takes
``/take [OPENID]``, ``/transfer AGENT|GROUP``, ``/close``, ``/status STATUS``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Label, Log, Static

from bankwx_cli import extensions
from bankwx_cli.clock import BANK_TZ, iso
from bankwx_cli.domain import agents
from bankwx_cli.domain.agent_typing import Typist
from bankwx_cli.errors import BankwxError
from bankwx_cli.models.agents import STATUSES, Agent, AgentSession, QueueEntry, SessionMessage

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

log = logging.getLogger(__name__)

POLL_S = 1.0
FINISHED_SHOWN = 5  # closed or expired sessions listed below the open ones
RECENT = timedelta(hours=12)  # of those that entered within a shift
HELP = "Reply, Enter sends · /take [OPENID] · /transfer TO · /close · /status STATUS"


def _local(stamp: str | None) -> str:
    """An ISO time of the store as the bank's clock time (HH:MM:SS)."""
    if not stamp:
        return ""
    return (
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        .astimezone(BANK_TZ)
        .strftime("%H:%M:%S")
    )


def _left(expires_at: str | None, now: datetime) -> str:
    """Time left until expires_at: 47h59m, 12m05s, 40s."""
    if not expires_at:
        return "closed"
    seconds = int((datetime.fromisoformat(expires_at.replace("Z", "+00:00")) - now).total_seconds())
    if seconds <= 0:
        return "closed"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def conversation_line(message: SessionMessage) -> str:
    """One transcript line as the console shows it."""
    arrow = "←" if message.direction == "in" else "→"
    who = "follower" if message.direction == "in" else (message.sender or "agent")
    return f"{_local(message.at)} {arrow} {who}: {message.content or ''}"


class AgentConsole(App[None]):
    """The agent console of one operator (an agent of the account)."""

    TITLE = "bankwx agent console"
    CSS = """
    #status { height: 1; background: $primary; color: $text; padding: 0 1; }
    #left { width: 45%; }
    #right { width: 55%; }
    .title { text-style: bold; padding: 0 1; }
    #queue { height: 1fr; }
    #sessions { height: 1fr; }
    #window { height: 1; padding: 0 1; }
    #conversation { height: 1fr; border: round $secondary; }
    #message { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "take", "Take"),
        Binding("f3", "transfer", "Transfer"),
        Binding("f4", "close_session", "Close"),
        Binding("f5", "next_status", "Status"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        app: AppContext,
        account: str | None,
        poll_s: float = POLL_S,
        periodic: bool = True,
    ) -> None:
        super().__init__()
        self.ctx = app
        self.account = account
        self.poll_s = poll_s
        self.periodic = periodic
        self.typist = Typist()
        self.selected: int | None = None  # the session shown
        self.shown_line = 0  # the last transcript line shown of it
        self.me: Agent | None = None
        self.queue: list[QueueEntry] = []
        self.sessions: list[AgentSession] = []
        self._queue_rows: list[tuple[str, ...]] = []
        self._session_rows: list[tuple[str, ...]] = []
        self._stop = threading.Event()
        self._periodic_thread: threading.Thread | None = None

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with Horizontal():
            with Vertical(id="left"):
                yield Label("Queue (F2 takes)", classes="title")
                yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
                yield Label("My sessions (Enter shows)", classes="title")
                yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
            with Vertical(id="right"):
                yield Static("No session selected.", id="window")
                yield Log(id="conversation", highlight=False)
                yield Static("", id="message")
                yield Input(placeholder=HELP, id="reply")
        yield Footer()

    def on_mount(self) -> None:
        queue: DataTable[str] = self.query_one("#queue", DataTable)
        queue.add_columns("#", "openid", "group", "waiting")
        sessions: DataTable[str] = self.query_one("#sessions", DataTable)
        sessions.add_columns("id", "openid", "state", "window", "left")
        self.refresh_data()
        self.set_interval(self.poll_s, self.refresh_data)
        if self.periodic:
            self._start_periodic()
        self.query_one("#reply", Input).focus()

    def on_unmount(self) -> None:
        self._stop.set()
        if self._periodic_thread is not None:
            self._periodic_thread.join(timeout=5)

    # --- the periodic work, as every receiver runs it -------------------------------------------

    def _start_periodic(self) -> None:
        tasks = extensions.registry().periodic_tasks(extensions.tests_enabled(self.ctx))
        if not tasks:
            return
        due = dict.fromkeys((t.name for t in tasks), 0.0)

        def loop() -> None:
            while not self._stop.is_set():
                now = time.monotonic()
                for task in tasks:
                    if now < due[task.name]:
                        continue
                    due[task.name] = now + task.every_s
                    try:
                        task.task(self.ctx)
                    except Exception:
                        log.exception("periodic task %s failed; trying again", task.name)
                self._stop.wait(max(0.05, min(due.values()) - time.monotonic()))

        self._periodic_thread = threading.Thread(
            target=loop, name="bankwx-console-periodic", daemon=True
        )
        self._periodic_thread.start()

    # --- what the screen shows ---------------------------------------------------------------

    @property
    def session(self) -> AgentSession | None:
        """The selected session as last read."""
        return next((s for s in self.sessions if s.id == self.selected), None)

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(text)

    def refresh_data(self) -> None:
        """Read the store again: the agent, the queue, the sessions, new conversation lines."""
        try:
            self._read()
        except BankwxError as exc:
            self.say(f"Error: {exc}")
            return
        self._show_status()
        self._show_queue()
        self._show_sessions()
        self._show_conversation()

    def _read(self) -> None:
        app = self.ctx
        self.me = next((a for a in agents.list_(app, self.account) if a.name == app.operator), None)
        self.queue = agents.queue(app, self.account)
        live = agents.sessions(app, self.account, state="open")
        since = iso(app.clock.now() - RECENT)
        recent = agents.sessions(app, self.account, since=since)
        finished = [s for s in recent if not s.live][-FINISHED_SHOWN:]
        self.sessions = live + finished
        if self.selected is not None and self.session is None:  # transferred, or long over
            self.selected = None
            self.query_one("#conversation", Log).clear()
        if self.selected is None and live:
            self.select(live[0].id)

    def _show_status(self) -> None:
        me = self.me
        now = self.ctx.clock.now().astimezone(BANK_TZ).strftime("%Y-%m-%d %H:%M:%S")
        status = me.status if me else "not an agent"
        load = f" · {me.sessions}/{me.max_sessions} sessions" if me else ""
        failures = self.typist.failures
        typing = f" · typing failures {failures}" if failures else ""
        self.query_one("#status", Static).update(
            f"{self.ctx.operator} · {status}{load} · {len(self.queue)} waiting · {now}{typing}"
        )

    def _show_queue(self) -> None:
        rows: list[tuple[str, ...]] = [
            (str(q.position), q.openid, q.group or "", f"{int(q.waiting_s)}s") for q in self.queue
        ]
        if rows == self._queue_rows:
            return
        self._queue_rows = rows
        table: DataTable[str] = self.query_one("#queue", DataTable)
        cursor = table.cursor_row
        table.clear()
        for entry, row in zip(self.queue, rows, strict=True):
            table.add_row(*row, key=entry.openid)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _show_sessions(self) -> None:
        now = self.ctx.clock.now()
        rows: list[tuple[str, ...]] = [
            (str(s.id), s.openid, s.state,
             _left(s.window_expires_at, now) if s.live else "",
             "" if s.messages_left is None or not s.live else str(s.messages_left))
            for s in self.sessions
        ]  # fmt: skip
        if rows == self._session_rows:
            return
        self._session_rows = rows
        table: DataTable[str] = self.query_one("#sessions", DataTable)
        cursor = table.cursor_row
        table.clear()
        for session, row in zip(self.sessions, rows, strict=True):
            table.add_row(*row, key=str(session.id))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def _show_conversation(self) -> None:
        window = self.query_one("#window", Static)
        session = self.session
        if session is None:
            window.update("No session selected: take one (F2) or pick one (Enter).")
            return
        if session.live:
            left = _left(session.window_expires_at, self.ctx.clock.now())
            allowed = session.messages_left if session.messages_left is not None else 0
            doubt = session.unknown_units
            unknown = f" · {doubt} reply(ies) in doubt: see bankwx outbox list" if doubt else ""
            window.update(
                f"Session {session.id} · {session.openid} · {session.state} · window {left}, "
                f"{allowed} message(s) left{unknown}"
            )
        else:
            reason = f" ({session.close_reason})" if session.close_reason else ""
            window.update(f"Session {session.id} · {session.openid} · {session.state}{reason}")
        try:
            lines = agents.transcript(self.ctx, session.id, self.shown_line, self.account)
        except BankwxError as exc:
            self.say(f"Error: {exc}")
            return
        if lines:
            self.query_one("#conversation", Log).write_lines(conversation_line(m) for m in lines)
            self.shown_line = lines[-1].id

    def select(self, session_id: int) -> None:
        """Show this session's conversation (from its first line)."""
        if session_id == self.selected:
            return
        self.selected = session_id
        self.shown_line = 0
        self.query_one("#conversation", Log).clear()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sessions" and event.row_key.value is not None:
            self.select(int(event.row_key.value))
            self.refresh_data()
            self.query_one("#reply", Input).focus()
        elif event.data_table.id == "queue" and event.row_key.value is not None:
            self._take(event.row_key.value)

    # --- actions (off the screen's thread: a reply waits for WeChat) ---------------------------

    def _act(self, work: Callable[[], Any], done: Callable[[Any], str]) -> None:
        """Run work in a thread; say what it did (or the error) and read the store again."""

        def run() -> None:
            try:
                result = work()
            except BankwxError as exc:
                refused = f"Error: {exc}"
                self.call_from_thread(self._finish, lambda _: refused, None)
                return
            self.call_from_thread(self._finish, done, result)

        self.run_worker(run, thread=True, group="actions")

    def _finish(self, done: Callable[[Any], str], result: Any) -> None:
        self.say(done(result))
        if isinstance(result, AgentSession) and result.live and result.agent == self.ctx.operator:
            self.select(result.id)
        self.refresh_data()

    def _take(self, openid: str | None) -> None:
        app = self.ctx
        self._act(lambda: agents.take(app, self.account, openid),
                  lambda s: f"Session {s.id}: you serve {s.openid}.")  # fmt: skip

    def action_take(self) -> None:
        queue: DataTable[str] = self.query_one("#queue", DataTable)
        openid = None
        if queue.has_focus and self.queue and 0 <= queue.cursor_row < len(self.queue):
            openid = self.queue[queue.cursor_row].openid
        self._take(openid)

    def action_transfer(self) -> None:
        line = self.query_one("#reply", Input)
        line.value = "/transfer "
        line.cursor_position = len(line.value)
        line.focus()
        self.say("Transfer to: type an agent or a group, then Enter.")

    def action_close_session(self) -> None:
        if self.selected is None:
            self.say("Error: no session selected.")
            return
        app, session_id = self.ctx, self.selected
        self._act(lambda: agents.close(app, session_id, self.account),
                  lambda s: f"Closed session {s.id}.")  # fmt: skip

    def action_next_status(self) -> None:
        current = self.me.status if self.me else "offline"
        following = STATUSES[(STATUSES.index(current) + 1) % len(STATUSES)]
        self._status(following)

    def _status(self, status: str) -> None:
        app = self.ctx
        self._act(lambda: agents.set_status(app, self.account, status),
                  lambda a: f"You are {a.status}.")  # fmt: skip

    def _transfer(self, to: str) -> None:
        if self.selected is None:
            self.say("Error: no session selected.")
            return
        app, session_id = self.ctx, self.selected
        self._act(lambda: agents.transfer(app, session_id, to, self.account),
                  lambda s: f"Session {s.id} is now {s.state} ({s.agent or s.group}).")  # fmt: skip

    def _reply(self, text: str) -> None:
        session_id = self.selected
        if session_id is None:
            self.say("Error: no session selected: take one (F2) or pick one (Enter).")
            return
        app, line = self.ctx, self.query_one("#reply", Input)

        def work() -> Any:
            sent = agents.reply(app, session_id, text, self.account)
            self.typist.replied(session_id)  # the message ends the indicator
            return sent

        def done(sent: Any) -> str:
            if line.value == text:
                line.value = ""
            return f"Sent (unit {sent.unit}); {sent.messages_left} more allowed in the window."

        self._act(work, done)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            return
        if not value.startswith("/"):
            self._reply(event.value)
            return
        event.input.value = ""
        command, _, rest = value[1:].partition(" ")
        rest = rest.strip()
        if command == "take":
            self._take(rest or None)
        elif command == "transfer" and rest:
            self._transfer(rest)
        elif command == "close":
            self.action_close_session()
        elif command == "status" and rest in STATUSES:
            self._status(rest)
        else:
            self.say(f"Error: unknown command '{value}'. {HELP}.")

    def on_input_changed(self, event: Input.Changed) -> None:
        """A keystroke in the reply line: WeChat's typing indicator, when due."""
        if not event.value or event.value.startswith("/"):
            return
        session = self.session
        if session is None or not self.typist.claim(self.ctx, session):
            return
        app = self.ctx
        self.run_worker(lambda: self.typist.send(app, session), thread=True, group="typing")


def run(app: AppContext, account: str | None) -> None:
    """Open the console until the agent quits."""
    AgentConsole(app, account).run()

"""One registry per extension point, filled the same way whatever the entry point.

An *area* (a module of the package) declares what it adds in one place: a module-level
``install(registry)`` function, and its line in ``AREAS`` (the module and the points it
declares). ``registry()`` is the process's registry: the first time an extension point is read
(by a command of the CLI, ``bankwx serve`` and each of its workers, a test), the areas
declaring it are imported and their ``install`` run, once. Nothing is registered by importing a
module, so what is registered never depends on which modules an entry point happened to import.
A new area adds its module and one line to ``AREAS``; nothing else needs to know it exists.

Extension points (what ``install`` may call on the registry):

- ``action(name, description, arg=, default=, validate=, sensitive=)``: a named business
  action that keyword rules and menu CLICK keys call (see ``domain/actions.py``).
- ``on_message(msg_type, hook)`` / ``on_event(event, hook)``: engine hooks, run in a fixed
  order (``order``, then ``AREAS`` order, then the order of the ``install`` calls); a hook that
  returns a ``Decision`` ends routing, one that returns None lets it go on.
- ``follower_lookup(lookup, candidates=)``: runs inside the receiver's writer unit (the
  transaction that claims the message), for messages only, first deliveries only, before
  message hooks and keyword rules; returns a ``Decision`` to take the message (a reply, or
  success, with its own route and outcome), None to let routing go on. It runs on the writer
  thread that every callback waits for: a point read by key, no network. Like any write unit
  it may run twice (its first run rolled back), so whatever it does outside the store must be
  idempotent. ``candidates(app, account, openids)`` (the receiver's Account), when given,
  narrows it: run once per group
  commit, at the start of its transaction, with every follower of the group's messages, it
  answers (one query for the group) which of them the lookup may take; the lookup then runs
  only for those. Most followers are in no state a lookup takes, so the common message pays a
  share of one query instead of a query of its own.
- ``on_late(hook)``: every late-answer hook runs when a handler overran the deadline.
- ``route(methods, path, handler, max_body=, errors=, observe=, listener=)``: an HTTP route of
  ``bankwx serve`` (see ``server.py`` for the table that serves them). ``listener``: "public"
  (the callback port), "admin" (``--admin-port`` when given, else the public port) or "both".
- ``tag_source(fn)``: where conditional menus' tag ids are checked.
- ``sender(kind, budget=, crash=, rate=, dedup_window_s=)``: the outbox's sender of a kind
  (decorator): the send function, the rate-budget key and the crash policy (``at_most_once``:
  a unit caught mid-send becomes ``unknown``; ``idempotent``: it is sent again, because WeChat
  de-duplicates it). See ``domain/outbox.py``.
- ``on_final(source_type, hook)``, ``on_delivery(source_type, hook)``,
  ``before_send(source_type, check)``: the outbox's hooks per source type (the ``broadcast``
  of ``broadcast:12``): final states, WeChat's delivery reports, checks before a deferred unit
  is sent. Every hook of a source runs, in the fixed order above.
- ``setting(Setting(...))``: a per-account setting (see ``domain/account_settings.py``).
- ``periodic(name, task, every_s)``: work every ``bankwx serve`` process runs in a background
  thread every ``every_s`` seconds (``task(app)``), beside the outbox dispatcher: assignment,
  timeouts, expiries. Each run must be safe when several processes run it at once (the store
  decides, as for the outbox's claims), and a failing run is logged and tried again.

An area listed with ``test_only=True`` is used only when ``BANKWX_TEST_ACTIONS=1``: its entries
are registered like any other, and every reader (the action lookup, the engine, the route
table) leaves them out unless the context's settings enable test actions.
"""

from __future__ import annotations

import importlib
import itertools
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.account_settings import Setting
    from bankwx_cli.domain.actions import ActionContext
    from bankwx_cli.domain.outbox import Cancel, Defer
    from bankwx_cli.domain.routing import Decision, Runtime
    from bankwx_cli.models.accounts import Account
    from bankwx_cli.models.outbox import OutboxUnit as Unit
    from bankwx_cli.models.replies import Reply
    from bankwx_cli.wechat.callback import Inbound


POINTS = (
    "action",
    "message",
    "event",
    "late",
    "lookup",
    "route",
    "tag_source",
    "sender",
    "final",
    "delivery",
    "before_send",
    "setting",
    "periodic",
)


@dataclass(frozen=True)
class Area:
    """A module that declares entries, and which extension points it declares: a point's
    readers import only the areas declaring it (``bankwx keyword add`` never imports the
    server, nor wechatpy)."""

    name: str
    module: str
    points: tuple[str, ...] = ()
    test_only: bool = False


#: Every area that declares something, in the order its declarations take effect.
AREAS: tuple[Area, ...] = (
    Area("accounts", "bankwx_cli.domain.account_settings", ("setting",)),
    Area("actions", "bankwx_cli.domain.actions", ("action",)),
    Area("outbox", "bankwx_cli.domain.outbox", ("late", "event", "sender")),
    Area("broadcasts", "bankwx_cli.domain.broadcasts", ("event", "final")),
    Area("tags", "bankwx_cli.domain.tags", ("tag_source",)),
    Area(
        "agents",
        "bankwx_cli.domain.agents",
        ("setting", "action", "lookup", "event", "periodic", "sender"),
    ),
    Area("branches", "bankwx_cli.domain.branches", ("setting", "action", "message", "event")),
    Area("bank", "bankwx_cli.domain.bank", ("setting", "action")),
    Area(
        "alerts",
        "bankwx_cli.domain.alerts",
        ("setting", "route", "sender", "final", "delivery", "before_send", "event"),
    ),
    Area("alert_preferences", "bankwx_cli.domain.alert_preferences", ("action",)),
    Area("reports", "bankwx_cli.domain.reports", ("setting",)),
    Area("server", "bankwx_cli.server", ("route",)),
    Area("binding", "bankwx_cli.domain.binding_page", ("route",)),
    Area(
        "trials",
        "bankwx_cli.domain.trials",
        ("action", "event", "lookup", "late", "route", "sender", "setting"),
        test_only=True,
    ),
)
_CORE = Area("core", "", POINTS)


# --- entry types ------------------------------------------------------------------------------

ActionFn = Callable[["ActionContext"], "Reply | None"]
#: Called when a rule naming the action is saved: (app, account, arg) -> None, or raises
#: ValidationError saying why the rule is refused.
ActionValidator = Callable[["AppContext", "Account", "str | None"], None]
Hook = Callable[["AppContext", "Runtime", "Inbound"], "Decision | None"]
Candidates = Callable[["AppContext", "Account", "list[str]"], "set[str]"]
PeriodicTask = Callable[["AppContext"], None]
#: (app, runtime, inbound, message id, decision) -> the outcome to record, or None.
LateHook = Callable[["AppContext", "Runtime", "Inbound", int, "Decision"], "str | None"]
TagSource = Callable[["AppContext", str], Any]
# Sends one outbox unit; returns WeChat's message id (or None). Raises the WeChatError family:
# the dispatcher decides from it whether the unit failed, waits, or is unknown.
SendFn = Callable[["AppContext", "Unit"], "str | None"]
FinalHook = Callable[["AppContext", "Unit"], None]
DeliveryHook = Callable[["AppContext", "Unit", str], None]
Check = Callable[["AppContext", "Unit"], "Defer | Cancel | None"]
CrashPolicy = Literal["at_most_once", "idempotent"]
Listener = Literal["public", "admin", "both"]
CRASH_POLICIES = ("at_most_once", "idempotent")


@dataclass(frozen=True)
class Action:
    """A named business action.

    ``arg`` says what ``--arg`` means (None: the action takes none); with a ``default`` the
    argument may be left out and the action sees the default. ``validate`` runs when a rule
    naming the action is saved. A ``sensitive`` action's reply is never stored or logged in
    clear.
    """

    name: str
    description: str
    fn: ActionFn
    arg: str | None = None
    default: str | None = None
    validate: ActionValidator | None = None
    sensitive: bool = False
    area: str = ""
    test_only: bool = False


@dataclass(frozen=True)
class Sender:
    """The outbox's sender of one kind."""

    kind: str
    send: SendFn
    budget: str  # the rate-budget key: kinds with one key share its calls a second per account
    crash: CrashPolicy
    rate: int  # calls a second per account, unless the account's `rates` names the budget key
    dedup_window_s: float | None = None  # idempotent only this long after the first attempt
    area: str = ""
    test_only: bool = False  # only with BANKWX_TEST_ACTIONS=1


@dataclass(frozen=True)
class SourceHooks:
    """The outbox's hooks of one source type, each in the registry's order."""

    final: tuple[FinalHook, ...] = ()
    delivery: tuple[DeliveryHook, ...] = ()
    checks: tuple[Check, ...] = ()


class Host(Protocol):
    """What a route handler may use of the server: the context, and a way to block."""

    app: AppContext

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any: ...


@dataclass(slots=True)
class Request:
    """One HTTP request as a route handler sees it (its body already read, within the limit)."""

    host: Host
    method: str
    path: str
    params: dict[str, str]
    scope: Mapping[str, Any]
    body: bytes
    started: float  # time.perf_counter() when the request arrived


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: bytes | None = None  # text/plain; charset=utf-8 when None
    outcome: str = "ok"  # for metrics and logs
    headers: tuple[tuple[bytes, bytes], ...] = ()  # more headers (Location, Set-Cookie, ...)


@dataclass(frozen=True)
class ErrorMap:
    """An exception raised by a handler, as the response it becomes (first match wins)."""

    error: type[BaseException]
    status: int
    body: bytes
    outcome: str


Handler = Callable[[Request], Awaitable[Response]]
#: How a handler that answers on the event loop (``Route.on_loop``) hands over its answer: a
#: response, or the exception that the route's ``errors`` turn into one. Called once, on the loop.
Answer = Callable[["Response | BaseException"], None]
LoopHandler = Callable[[Request, Answer], None]
Observe = Callable[[Request, Response], None]

_SEGMENT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    """``path`` is literal, or has ``{name}`` segments (one path segment each) after a literal
    first segment. ``max_body`` None: the server's limit (``--max-body``); 0: no body is read.
    ``observe`` is called after every response of the route (errors and 413 included);
    ``too_large`` is its answer to a body over ``max_body`` (None: 413, ``body too large``).

    A route has either ``handler``, a coroutine run in a task of its own, or ``on_loop``, a
    function called on the event loop that answers through its ``Answer``, now or later (when
    work it handed to a thread is done), and never blocks. The HTTP layer serves an
    ``on_loop`` route without a task or the ASGI messages (``bankwx_cli/http1.py``): the
    callback endpoint's hot path. Either may raise what ``errors`` maps."""

    methods: tuple[str, ...]
    path: str
    handler: Handler | None
    max_body: int | None = None
    errors: tuple[ErrorMap, ...] = ()
    observe: Observe | None = None
    area: str = ""
    test_only: bool = False
    listener: Listener = "public"
    too_large: Response | None = None
    on_loop: LoopHandler | None = None

    def pattern(self) -> re.Pattern[str] | None:
        """The compiled path when it has parameters, else None."""
        if "{" not in self.path:
            return None
        parts = []
        for part in self.path.split("/"):
            whole = _SEGMENT.fullmatch(part)
            parts.append(f"(?P<{whole.group(1)}>[^/]+)" if whole else re.escape(part))
        return re.compile("/".join(parts))

    def first_segment(self) -> str:
        return self.path.split("/", 2)[1]

    def failure(self, error: BaseException) -> tuple[ErrorMap | None, Response]:
        """The response for an exception the handler raised (500 when none maps it)."""
        for entry in self.errors:
            if isinstance(error, entry.error):
                return entry, Response(entry.status, entry.body, None, entry.outcome)
        return None, Response(500, b"internal error", None, "error")


@dataclass(frozen=True)
class Periodic:
    """Work every receiver process runs in the background (``registry.periodic``)."""

    name: str
    task: PeriodicTask
    every_s: float


@dataclass(frozen=True)
class FollowerLookup:
    """A follower-state lookup and, optionally, the query narrowing it per group commit."""

    take: Hook
    candidates: Candidates | None = None


@dataclass(frozen=True)
class _Entry:
    point: str
    key: str
    value: Any
    order: int
    position: int  # the area's place in AREAS
    seq: int
    area: str
    test_only: bool


class Registry:
    """Every extension point's declarations. Areas write through the declaring methods (from
    their ``install``); readers ask with ``tests`` = whether test-only areas are enabled."""

    def __init__(self, areas: Iterable[Area] = ()) -> None:
        self._entries: list[_Entry] = []
        self._seq = itertools.count()
        self._area = _CORE
        self._pending = list(areas)  # not yet installed
        self._positions = {area.name: i for i, area in enumerate(self._pending)}
        self._lock = threading.RLock()
        self._ready: set[str] = set()  # points whose declaring areas are all installed
        self._read: dict[tuple[str, bool], Any] = {}  # what readers built, until a change

    # --- declaring ------------------------------------------------------------------------------

    def _add(self, point: str, key: str, value: Any, order: int = 0) -> None:
        area = self._area
        if point not in area.points:
            raise RuntimeError(f"area '{area.name}' declares a '{point}', not in its AREAS points")
        position = self._positions.get(area.name, -1)
        self._entries.append(
            _Entry(point, key, value, order, position, next(self._seq), area.name, area.test_only)
        )
        self._read.clear()

    def action(
        self,
        name: str,
        description: str,
        *,
        arg: str | None = None,
        default: str | None = None,
        validate: ActionValidator | None = None,
        sensitive: bool = False,
    ) -> Callable[[ActionFn], ActionFn]:
        """Decorator: register fn as the action ``name``."""
        if any(e.point == "action" and e.key == name for e in self._entries):
            raise RuntimeError(f"action '{name}' is registered twice")
        if default is not None and arg is None:
            raise RuntimeError(f"action '{name}': a default needs an arg description")

        def register(fn: ActionFn) -> ActionFn:
            area = self._area
            found = Action(name, description, fn, arg, default, validate, sensitive, area.name,
                           area.test_only)  # fmt: skip
            self._add("action", name, found)
            return fn

        return register

    def on_message(self, msg_type: str, hook: Hook, order: int = 0) -> None:
        self._add("message", msg_type, hook, order)

    def on_event(self, event: str, hook: Hook, order: int = 0) -> None:
        self._add("event", event.lower(), hook, order)

    def on_late(self, hook: LateHook, order: int = 0) -> None:
        self._add("late", "", hook, order)

    def follower_lookup(
        self, lookup: Hook, order: int = 0, candidates: Candidates | None = None
    ) -> None:
        self._add("lookup", "", FollowerLookup(lookup, candidates), order)

    def tag_source(self, source: TagSource) -> None:
        self._add("tag_source", "", source)

    def sender(
        self,
        kind: str,
        *,
        budget: str,
        crash: CrashPolicy,
        rate: int,
        dedup_window_s: float | None = None,
    ) -> Callable[[SendFn], SendFn]:
        """Decorator: register fn as the outbox's sender of kind."""
        if crash not in CRASH_POLICIES:
            raise ValueError(f"crash policy '{crash}' is invalid: use {', '.join(CRASH_POLICIES)}.")
        if any(e.point == "sender" and e.key == kind for e in self._entries):
            raise RuntimeError(f"outbox kind '{kind}' is registered twice")

        def register(fn: SendFn) -> SendFn:
            area = self._area
            found = Sender(kind, fn, budget, crash, rate, dedup_window_s, area.name,
                           area.test_only)  # fmt: skip
            self._add("sender", kind, found)
            return fn

        return register

    def on_final(self, source_type: str, hook: FinalHook, order: int = 0) -> None:
        """Called once when a unit of the source type reaches sent, failed, unknown or
        cancelled, in the transaction that records it (keep it to store writes); an exception
        undoes what the hook wrote, is logged, and does not undo the unit's state."""
        self._add("final", source_type, hook, order)

    def on_delivery(self, source_type: str, hook: DeliveryHook, order: int = 0) -> None:
        """Told WeChat's delivery report on a sent unit of the source type (its Status)."""
        self._add("delivery", source_type, hook, order)

    def before_send(self, source_type: str, check: Check, order: int = 0) -> None:
        """Run before a unit's first attempt, each time it comes due.

        It runs inside the dispatcher's claim transaction, once each time the unit is about to
        be claimed (due, and granted its rate budget): decide from the store, call nothing
        remote. Returns None (send), Defer(until) or Cancel(reason); the first verdict wins.
        """
        self._add("before_send", source_type, check, order)

    def periodic(self, name: str, task: PeriodicTask, every_s: float) -> None:
        if any(e.point == "periodic" and e.key == name for e in self._entries):
            raise RuntimeError(f"periodic task '{name}' is registered twice")
        if every_s <= 0:
            raise RuntimeError(f"periodic task '{name}': every_s must be positive")
        self._add("periodic", name, Periodic(name, task, every_s))

    def setting(self, setting: Setting) -> Setting:
        """A per-account setting (a test-only area's settings are test-only)."""
        if any(e.point == "setting" and e.key == setting.key for e in self._entries):
            raise RuntimeError(f"setting '{setting.key}' is registered twice")
        found = replace(setting, test_only=setting.test_only or self._area.test_only)
        self._add("setting", setting.key, found)
        return found

    def route(
        self,
        methods: str | Iterable[str],
        path: str,
        handler: Handler | None = None,
        *,
        on_loop: LoopHandler | None = None,
        max_body: int | None = None,
        errors: Iterable[ErrorMap] = (),
        observe: Observe | None = None,
        listener: Listener = "public",
        too_large: Response | None = None,
    ) -> None:
        if (handler is None) == (on_loop is None):
            raise RuntimeError(f"route '{path}': give either handler or on_loop")
        verbs = (methods,) if isinstance(methods, str) else tuple(methods)
        if not path.startswith("/") or "{" in path.split("/", 2)[1]:
            raise RuntimeError(f"route '{path}': the first segment must be literal")
        for part in path.split("/"):
            if ("{" in part or "}" in part) and not _SEGMENT.fullmatch(part):
                raise RuntimeError(f"route '{path}': a parameter is a whole segment")
        area = self._area
        route = Route(tuple(v.upper() for v in verbs), path, handler, max_body, tuple(errors),
                      observe, area.name, area.test_only, listener, too_large,
                      on_loop)  # fmt: skip
        for entry in self._entries:
            same = entry.point == "route" and entry.key == path
            if same and set(entry.value.methods) & set(route.methods):
                raise RuntimeError(f"route {path} is registered twice")
        self._add("route", path, route)

    # --- reading --------------------------------------------------------------------------------

    def _install(self, point: str) -> None:
        """Install the areas declaring point that are not installed yet (in AREAS order; an
        area declaring several points is installed once). A reader on another thread waits on
        the lock until the point's areas are all installed, never sees them half done."""
        if point in self._ready:
            return
        with self._lock:
            for area in list(self._pending):
                if point in area.points and area in self._pending:
                    self._pending.remove(area)
                    module = importlib.import_module(area.module)
                    self._area = area
                    try:
                        module.install(self)
                    finally:
                        self._area = _CORE
                        self._read.clear()
            self._ready.add(point)

    def _values(self, point: str, tests: bool) -> list[_Entry]:
        self._install(point)
        found = [e for e in self._entries if e.point == point and (tests or not e.test_only)]
        return sorted(found, key=lambda e: (e.order, e.position, e.seq))

    def actions(self, tests: bool) -> dict[str, Action]:
        return {e.key: e.value for e in self._values("action", tests)}

    def message_hooks(self, tests: bool) -> dict[str, tuple[Hook, ...]]:
        return _grouped(self._values("message", tests))

    def event_hooks(self, tests: bool) -> dict[str, tuple[Hook, ...]]:
        return _grouped(self._values("event", tests))

    def late_hooks(self, tests: bool) -> tuple[LateHook, ...]:
        return tuple(e.value for e in self._values("late", tests))

    def follower_lookups(self, tests: bool) -> tuple[FollowerLookup, ...]:
        return tuple(e.value for e in self._values("lookup", tests))

    def tag_sources(self, tests: bool) -> tuple[TagSource, ...]:
        return tuple(e.value for e in self._values("tag_source", tests))

    def routes(self, tests: bool) -> list[Route]:
        return [e.value for e in self._values("route", tests)]

    def _cached(self, name: str, tests: bool, build: Callable[[], Any]) -> Any:
        """What build makes, kept until the next declaration (for readers on the hot path: a
        dispatcher's claim, the receiver's account settings)."""
        found = self._read.get((name, tests))
        if found is None:
            found = build()
            self._read[(name, tests)] = found
        return found

    def _keyed(self, point: str, tests: bool) -> Mapping[str, Any]:
        return MappingProxyType({e.key: e.value for e in self._values(point, tests)})

    def senders(self, tests: bool) -> Mapping[str, Sender]:
        found: Mapping[str, Sender] = self._cached(
            "sender", tests, lambda: self._keyed("sender", tests)
        )
        return found

    def source_hooks(self, tests: bool) -> Mapping[str, SourceHooks]:
        """The outbox's hooks per source type."""

        def build() -> Mapping[str, SourceHooks]:
            final = _grouped(self._values("final", tests))
            delivery = _grouped(self._values("delivery", tests))
            checks = _grouped(self._values("before_send", tests))
            return MappingProxyType(
                {
                    source: SourceHooks(
                        final.get(source, ()), delivery.get(source, ()), checks.get(source, ())
                    )
                    for source in {*final, *delivery, *checks}
                }
            )

        found: Mapping[str, SourceHooks] = self._cached("source_hooks", tests, build)
        return found

    def periodic_tasks(self, tests: bool) -> tuple[Periodic, ...]:
        return tuple(e.value for e in self._values("periodic", tests))

    def settings(self, tests: bool) -> Mapping[str, Setting]:
        """Per-account settings by key, in declaration order."""
        found: Mapping[str, Setting] = self._cached(
            "setting", tests, lambda: self._keyed("setting", tests)
        )
        return found


def _grouped(entries: list[_Entry]) -> dict[str, tuple[Any, ...]]:
    grouped: dict[str, list[Any]] = {}
    for entry in entries:
        grouped.setdefault(entry.key, []).append(entry.value)
    return {k: tuple(v) for k, v in grouped.items()}


_lock = threading.Lock()
_loaded: Registry | None = None


def load(areas: Iterable[Area] = AREAS) -> Registry:
    """A registry filled by the areas' ``install``: an extension point's areas are installed
    when it is first read, in AREAS order (declarations' order does not depend on which point
    was read first: entries are sorted by order, then AREAS position)."""
    return Registry(areas)


def registry() -> Registry:
    """The process's registry, loaded on first use (thread-safe)."""
    global _loaded
    found = _loaded
    if found is None:
        with _lock:
            if _loaded is None:
                _loaded = load()
            found = _loaded
    return found


def tests_enabled(app: AppContext) -> bool:
    """Whether test-only areas count for this context (BANKWX_TEST_ACTIONS=1)."""
    return bool(app.settings.test_actions)

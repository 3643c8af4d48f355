"""The simulator's small router: a registry of handlers keyed by (method, path).

An API module registers its handlers on import::

    from bankwx_cli.sim.routing import Request, Result, ok, route
    from bankwx_cli.sim.state import SimState

    @route("POST", "/cgi-bin/menu/create")
    def create_menu(state: SimState, req: Request) -> Result:
        account = req.require_account()    # the token was checked: 41001/40014/40001/42001
        body = req.json_object()           # 44002 / 47001 / 47002 raised here
        menus = state.module_state("menus", dict, keep_on_reset=True)
        ...
        return ok()

and is listed in ``app.API_MODULES``. Handlers may be plain or ``async`` functions; they
return ``(status, json_value)`` or a ``Response``, or raise ``ApiError(errcode)``. Before a
handler runs, the app has injected latency and faults, checked the access token and counted
the call against the account's quotas (45009 / 45011); afterwards it adds the ``rid`` suffix
to error messages and logs the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.state import Account, SimState

JsonValue = Any

# A \uXXXX escape for a non-ASCII character, not preceded by an escaped backslash.
_UNICODE_ESCAPE_RE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u"
    rb"(?:00[89a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3})"
)


@dataclass
class Response:
    """A non-JSON answer (media downloads, plain text)."""

    status: int
    body: bytes
    content_type: str = "application/octet-stream"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str = ""  # the caller's IP address
    path_params: dict[str, str] = field(default_factory=dict)
    account: Account | None = None  # set once the access token checked out

    def json(self) -> JsonValue:
        """The body as JSON, with WeChat's errors: 44002 empty, 47001 malformed, 47002 escapes."""
        if not self.body.strip():
            raise ApiError(44002)
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(47001) from exc
        if _UNICODE_ESCAPE_RE.search(self.body):
            raise ApiError(47002)
        return value

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (anything else is 47001)."""
        value = self.json()
        if not isinstance(value, dict):
            raise ApiError(47001)
        return value

    def require_account(self) -> Account:
        """The account whose access token authorised this request."""
        if self.account is None:
            raise ApiError(41001)
        return self.account


Result = tuple[int, JsonValue] | Response
Handler = Callable[[SimState, Request], Result | Awaitable[Result]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: bool  # check access_token before calling the handler
    quota: bool  # count the call against the account's quotas (after auth)
    control: bool  # a /sim/ control endpoint: no faults, latency, log or WeChat envelope


ROUTES: dict[tuple[str, str], Route] = {}


def route(
    method: str,
    pattern: str,
    *,
    auth: bool | None = None,
    quota: bool | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` and ``pattern`` (``{name}`` matches one segment).

    WeChat API routes (anything outside ``/sim/``) check the access token and count quotas
    unless told not to; token endpoints pass ``auth=False`` and count quotas themselves.
    """
    control = pattern.startswith("/sim/")
    needs_auth = (not control) if auth is None else auth
    counts = needs_auth if quota is None else quota

    def register(handler: Handler) -> Handler:
        key = (method.upper(), pattern)
        if key in ROUTES and ROUTES[key].handler is not handler:
            raise RuntimeError(f"route {method} {pattern} is registered twice")
        ROUTES[key] = Route(method.upper(), pattern, handler, needs_auth, counts, control)
        return handler

    return register


def _match(pattern: str, path: str) -> dict[str, str] | None:
    if "{" not in pattern:
        return {} if pattern == path else None
    want, have = pattern.split("/"), path.split("/")
    if len(want) != len(have):
        return None
    params: dict[str, str] = {}
    for w, h in zip(want, have, strict=True):
        if w.startswith("{") and w.endswith("}"):
            if not h:
                return None
            params[w[1:-1]] = h
        elif w != h:
            return None
    return params


def find_route(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path parameters, methods the path allows) for a request."""
    exact = ROUTES.get((method, path))
    if exact is not None:
        return exact, {}, [method]
    allowed: list[str] = []
    found: tuple[Route, dict[str, str]] | None = None
    for (m, pattern), candidate in ROUTES.items():
        params = _match(pattern, path)
        if params is None:
            continue
        allowed.append(m)
        if m == method and found is None:
            found = (candidate, params)
    if found is not None:
        return found[0], found[1], allowed
    return None, {}, allowed


def ok(**fields: JsonValue) -> Result:
    """WeChat's success envelope: ``{"errcode": 0, "errmsg": "ok", ...}``."""
    return 200, {"errcode": 0, "errmsg": "ok", **fields}


def data(**fields: JsonValue) -> Result:
    """A success answer that carries only data (as token, user/get, tags/get do)."""
    return 200, dict(fields)

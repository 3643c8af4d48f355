"""The simulator as a pure ASGI application: WeChat's API plus the ``/sim/`` control endpoints.

Handlers live in API modules that register routes on import (see ``routing``); adding a
module is one line in ``API_MODULES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from bankwx_cli.sim.codes import ERRMSG, ApiError
from bankwx_cli.sim.routing import ROUTES, Request, Response, Result, Route, find_route, route
from bankwx_cli.sim.state import TOKEN_PATHS, SimState

__all__ = ["API_MODULES", "ROUTES", "SimApp", "create_app", "route"]

API_MODULES: tuple[str, ...] = (
    "bankwx_cli.sim.api_core",
    "bankwx_cli.sim.api_templates",
    "bankwx_cli.sim.api_mass",
    "bankwx_cli.sim.api_sim",
    "bankwx_cli.sim.api_users",
    "bankwx_cli.sim.api_menus",
    "bankwx_cli.sim.api_kf",
    "bankwx_cli.sim.oauth",
)

MAX_BODY_BYTES = 32 * 1024 * 1024
LOGGED_BODY_CHARS = 4000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)


def load_api_modules() -> None:
    for name in API_MODULES:
        importlib.import_module(name)


def create_app(state: SimState) -> SimApp:
    return SimApp(state)


class _BodyTooLarge(Exception):
    pass


class SimApp:
    """ASGI entry point. ``state`` may be swapped between tests."""

    def __init__(self, state: SimState) -> None:
        load_api_modules()
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in list(self.state.tasks):
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await _read_body(receive)
        except _BodyTooLarge:
            await _send_json(send, 413, {"error": "request body too large"})
            return
        query: dict[str, str] = {}
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), True):
            query.setdefault(key, value)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        request = Request(
            method=scope["method"],
            path=scope["path"],
            query=query,
            headers=headers,
            body=body,
            client=client[0] if client else "",
        )
        if request.path == "/sim" or request.path.startswith("/sim/"):
            await self._control(request, send)
        else:
            await self._api(request, receive, send)

    async def _control(self, request: Request, send: Send) -> None:
        found, params, allowed = find_route(request.method, request.path)
        if found is None:
            if allowed:
                await _send_json(send, 405, {"error": f"use {' or '.join(sorted(allowed))}"})
            else:
                await _send_json(send, 404, {"error": f"no control endpoint {request.path}"})
            return
        request.path_params = params
        try:
            result = await _call(found, self.state, request)
        except ValueError as exc:
            result = 400, {"error": str(exc)}
        except Exception as exc:
            logger.exception(
                "simulator control endpoint failed: %s %s", request.method, request.path
            )
            result = 500, {"error": f"simulator error: {type(exc).__name__}: {exc}"}
        await _send_result(send, result)

    async def _api(self, request: Request, receive: Receive, send: Send) -> None:
        state = self.state
        entry: dict[str, Any] = {
            "kind": "api",
            "method": request.method,
            "path": request.path,
            "appid": None,
            "query": {k: v for k, v in request.query.items() if k != "access_token"},
            "body": _loggable(request),
        }
        if request.path in TOKEN_PATHS:
            state.count_token_call(request.path)
        if state.faults.latency_ms:
            await asyncio.sleep(state.faults.latency_ms / 1000)
        fault = state.draw_fault()
        if fault is not None:
            entry["fault"] = fault
            await self._inject(fault, entry, receive, send)
            return
        try:
            result = await self._dispatch(request)
        except ApiError as exc:
            result = 200, {"errcode": exc.errcode, "errmsg": exc.errmsg}
        except Exception as exc:
            logger.exception("simulator handler failed for %s %s", request.method, request.path)
            result = 500, {"errcode": -1, "errmsg": f"simulator error: {type(exc).__name__}"}
        if request.account is not None:
            entry["appid"] = request.account.appid
        result = self._with_rid(result)
        entry["status"] = result.status if isinstance(result, Response) else result[0]
        entry["errcode"] = _errcode(result)
        state.record(entry)
        await _send_result(send, result)

    async def _dispatch(self, request: Request) -> Result:
        state = self.state
        found, params, allowed = find_route(request.method, request.path)
        if found is None:
            if allowed and request.method != "GET" and "GET" in allowed:
                raise ApiError(43001)
            if allowed and request.method != "POST" and "POST" in allowed:
                raise ApiError(43002)
            raise ApiError(40066)
        request.path_params = params
        if found.auth:
            request.account = state.check_token(request.query.get("access_token"))
        if found.quota and request.account is not None:
            state.hit_quota(request.account.appid, request.path)
        return await _call(found, state, request)

    def _with_rid(self, result: Result) -> Result:
        """Errors carry WeChat's request id suffix in errmsg."""
        if isinstance(result, Response):
            return result
        status, value = result
        if isinstance(value, dict) and value.get("errcode") not in (None, 0):
            value = {**value, "errmsg": f"{value.get('errmsg', '')} rid: {self.state.rid()}"}
        return status, value

    async def _inject(
        self, fault: str, entry: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        if fault == "drop":
            entry.update(status=None, errcode=None)
            self.state.record(entry)
            await _drop_connection(receive, send)
            return
        if fault == "http_503":
            entry.update(status=503, errcode=None)
            self.state.record(entry)
            await _send(send, 503, b"Service Unavailable", "text/plain")
            return
        code = -1 if fault == "busy" else 45011
        result = self._with_rid((200, {"errcode": code, "errmsg": ERRMSG[code]}))
        entry.update(status=200, errcode=code)
        self.state.record(entry)
        await _send_result(send, result)


async def _call(found: Route, state: SimState, request: Request) -> Result:
    result: Any = found.handler(state, request)
    if inspect.isawaitable(result):
        result = await result
    return result  # type: ignore[no-any-return]


def _errcode(result: Result) -> int | None:
    if isinstance(result, Response):
        return None
    value = result[1]
    if isinstance(value, dict):
        code = value.get("errcode", 0)
        return code if isinstance(code, int) else None
    return 0


def _loggable(request: Request) -> Any:
    """The request body for the log: parsed JSON when it is JSON, else (short) text."""
    if not request.body:
        return None
    if request.headers.get("content-type", "").startswith("multipart/"):
        return f"<multipart body, {len(request.body)} bytes>"
    try:
        return json.loads(request.body)
    except ValueError:
        return request.body[:LOGGED_BODY_CHARS].decode("utf-8", "replace")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra_headers: list[tuple[str, str]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers or []]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_json(send: Send, status: int, value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    await _send(send, status, body, "application/json; encoding=utf-8")


async def _send_result(send: Send, result: Result) -> None:
    if isinstance(result, Response):
        await _send(send, result.status, result.body, result.content_type, result.headers)
    else:
        await _send_json(send, result[0], result[1])


async def _drop_connection(receive: Receive, send: Send) -> None:
    """Close the connection without an answer, as a dropped connection looks to a client.

    ASGI has no message for this; under uvicorn the ``send`` callable belongs to the request
    cycle, which holds the transport. Elsewhere, raising makes the server end the exchange.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("simulated dropped connection")
    transport.close()
    # Wait for the server to notice, so that it does not answer "500" for us.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while (await receive())["type"] != "http.disconnect":
                pass

"""The WeChat API client: one per account, on wechatpy's client.

- Every request, wechatpy's absolute URLs included, goes to the configured base URL through a
  ``requests`` session mounted under wechatpy, with an explicit timeout (protocol sheet §8).
- wechatpy's unbounded retry on token errors is off; we refresh once and retry once.
- "System busy", frequency limits, HTTP 5xx and network failures are retried with backoff and
  jitter within a time budget; every other error becomes one ``WeChatError``.
- Every request is counted per account and endpoint with its outcome and latency, and logged
  at info (``-v``; with its milliseconds at debug, ``-vv``).
- A base URL that cannot be reached (connection refused, unknown host, no route) is retried for
  a few seconds only (``UNREACHABLE_BUDGET_S``), then reported naming the URL and the cause
  (``WeChatUnreachableError``): that is a configuration or network fault, not WeChat being busy.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests
from wechatpy import WeChatClient as _WechatpyClient
from wechatpy.exceptions import WeChatClientException

from bankwx_cli.errors import (
    WeChatError,
    WeChatInDoubtError,
    WeChatUnavailableError,
    WeChatUnreachableError,
)
from bankwx_cli.logs import Tally
from bankwx_cli.wechat import codes
from bankwx_cli.wechat.token import TokenManager, TokenStore

log = logging.getLogger(__name__)
calls_log = logging.getLogger("bankwx_cli.wechat.calls")  # -v and -vv only (bankwx_cli/logs.py)

WECHAT_HOST = "https://api.weixin.qq.com"
CONNECT_TIMEOUT_S = 3.0
UNREACHABLE_BUDGET_S = 4.0  # retrying an address that refuses connections, at most
UNREACHABLE_HINT = "; check --api-base (BANKWX_API_BASE) and that the host is up and reachable."
CALLS = Tally()  # requests made by this process (the -vv summary)
T = TypeVar("T")


class CallRecorder(Protocol):
    def record(
        self,
        appid: str,
        endpoint: str,
        outcome: str,
        errcode: int | None,
        latency_ms: float,
        retry: bool = False,
    ) -> None: ...


class _Session(requests.Session):
    """Rewrites WeChat's host to the configured base and enforces a timeout on every request."""

    def __init__(
        self, base: str, timeout: float, appid: str, recorder: CallRecorder | None
    ) -> None:
        super().__init__()
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.appid = appid
        self.recorder = recorder
        self.headers["User-Agent"] = "bankwx"
        # Whether the request being made is a later attempt of a call (a retry, a token
        # refresh's included): per thread, set by WeChatClient._with_retries.
        self.attempts = threading.local()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        url = url.decode() if isinstance(url, bytes) else url
        if url.startswith(WECHAT_HOST):
            url = self.base + url[len(WECHAT_HOST) :]
        if kwargs.get("timeout") is None:  # an address that does not answer fails fast
            kwargs["timeout"] = (min(CONNECT_TIMEOUT_S, self.timeout), self.timeout)
        endpoint = url[len(self.base) :].split("?", 1)[0] if url.startswith(self.base) else url
        CALLS()
        started = time.perf_counter()
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            self._record(endpoint, "network", None, started)
            _log_call(self.appid, method, endpoint, f"network ({cause(exc)})", None, started)
            raise
        errcode: int | None = None
        outcome = "ok"
        if response.status_code >= 400:
            outcome = f"http_{response.status_code}"
        elif response.headers.get("Content-Type", "").startswith(("application/json", "text/")):
            try:
                body = response.json()
                if isinstance(body, dict) and body.get("errcode"):
                    errcode = int(body["errcode"])
                    outcome = "error"
            except ValueError:
                pass
        self._record(endpoint, outcome, errcode, started)
        _log_call(self.appid, method, endpoint, outcome, errcode, started)
        return response

    def _record(self, endpoint: str, outcome: str, errcode: int | None, started: float) -> None:
        if self.recorder is not None:
            latency = (time.perf_counter() - started) * 1000
            retry = bool(getattr(self.attempts, "retry", False))
            self.recorder.record(self.appid, endpoint, outcome, errcode, latency, retry)


def _log_call(
    appid: str,
    method: str | bytes,
    endpoint: str,
    outcome: str,
    errcode: int | None,
    started: float,
) -> None:
    """One line per WeChat call: at info (-v), with its milliseconds at debug (-vv)."""
    if calls_log.isEnabledFor(logging.DEBUG):
        ms = (time.perf_counter() - started) * 1000
        calls_log.debug(
            "wechat call appid=%s method=%s endpoint=%s outcome=%s errcode=%s ms=%.1f",
            appid, _verb(method), endpoint, outcome, errcode, ms,
        )  # fmt: skip
    elif calls_log.isEnabledFor(logging.INFO):
        calls_log.info(
            "wechat call appid=%s method=%s endpoint=%s outcome=%s errcode=%s",
            appid, _verb(method), endpoint, outcome, errcode,
        )  # fmt: skip


class _Wx(_WechatpyClient):  # type: ignore[misc]
    """wechatpy's client with our token and without its unbounded retry."""

    def __init__(self, appid: str, secret: str, session: _Session, tokens: TokenManager) -> None:
        super().__init__(appid, secret, timeout=session.timeout, auto_retry=False)
        self._http = session
        self._tokens = tokens
        self.last_token = ""

    @property
    def access_token(self) -> str:
        self.last_token = self._tokens.get()
        return self.last_token

    def fetch_access_token(self) -> dict[str, Any]:
        raise RuntimeError("bankwx fetches tokens itself")  # never called: auto_retry is off


class WeChatClient:
    """One account's client. Methods raise WeChatError (exit 3) or WeChatUnavailableError."""

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        base_url: str,
        tokens: TokenStore,
        token_mode: str = "stable",
        recorder: CallRecorder | None = None,
        retry_budget_s: float = 30.0,
        timeout_s: float = 10.0,
        lease_s: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.appid = appid
        self._secret = secret
        self.token_mode = token_mode
        self.retry_budget_s = retry_budget_s
        self.sleep = sleep
        self.rng = rng or random.Random()  # jitter, not security
        self.session = _Session(base_url, timeout_s, appid, recorder)
        self.tokens = TokenManager(appid, tokens, self._fetch_token, lease_s=lease_s, now=now)
        self.wx = _Wx(appid, secret, self.session, self.tokens)

    # --- token -------------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, int]:
        """Fetch a new token: stable (default, never forced) or classic."""

        def fetch() -> dict[str, Any]:
            if self.token_mode == "classic":
                response = self.session.get(
                    f"{WECHAT_HOST}/cgi-bin/token",
                    params={
                        "grant_type": "client_credential",
                        "appid": self.appid,
                        "secret": self._secret,
                    },
                )
            else:
                body = {
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self._secret,
                    "force_refresh": False,
                }
                response = self.session.post(
                    f"{WECHAT_HOST}/cgi-bin/stable_token",
                    data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"},
                )
            return self._decode(response)

        result = self._with_retries(fetch, allow_refresh=False)
        return str(result["access_token"]), int(result.get("expires_in", 7200))

    @staticmethod
    def _decode(response: requests.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise WeChatClientException(None, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise WeChatClientException(-1, "response is not JSON") from None
        if not isinstance(body, dict):
            raise WeChatClientException(-1, "response is not a JSON object")
        if body.get("errcode"):
            raise WeChatClientException(int(body["errcode"]), str(body.get("errmsg", "")))
        return body

    def token(self) -> str:
        return self.tokens.get()

    # --- calls --------------------------------------------------------------------------------

    def call(self, fn: Callable[[Any], T], idempotent: bool = True) -> T:
        """Run fn(wechatpy_client) under our retry policy.

        When the call is not idempotent, a failure after the request may have reached WeChat
        raises WeChatInDoubtError instead of being retried.
        """
        return self._with_retries(lambda: fn(self.wx), allow_refresh=True, idempotent=idempotent)

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET WeChat's path (``/cgi-bin/...``) with the access token."""
        return self.call(lambda wx: wx.get(WECHAT_HOST + path, params=dict(params or {})))

    def post(self, path: str, data: dict[str, Any], idempotent: bool = True) -> dict[str, Any]:
        """POST a JSON body (raw UTF-8, as WeChat wants) to WeChat's path."""
        return self.call(lambda wx: wx.post(WECHAT_HOST + path, data=data), idempotent)

    def _with_retries(self, fn: Callable[[], T], allow_refresh: bool, idempotent: bool = True) -> T:
        attempts = self.session.attempts
        outer = getattr(attempts, "retry", False)  # a token fetch inside a call's attempt
        try:
            return self._attempts(fn, allow_refresh, idempotent)
        finally:
            attempts.retry = outer

    def _attempts(self, fn: Callable[[], T], allow_refresh: bool, idempotent: bool) -> T:
        started = time.monotonic()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            unreachable = ""  # the cause, when the address could not be reached at all
            try:
                self.session.attempts.retry = attempt > 1
                return fn()
            except WeChatClientException as exc:
                errcode = None if exc.errcode is None else int(exc.errcode)
                errmsg = str(exc.errmsg or "")
                kind = codes.classify(errcode)
                if kind == "refresh" and allow_refresh and not refreshed:
                    refreshed = True
                    self.tokens.invalidate(self.wx.last_token)
                    continue
                if kind != "retry":
                    raise WeChatError(
                        errcode if errcode is not None else -1,
                        errmsg,
                        codes.explain(errcode if errcode is not None else -1),
                        _body(exc),
                    ) from None
                last = (errcode if errcode is not None else -1, errmsg or "HTTP error")
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not idempotent and not _never_sent(exc):
                    raise WeChatInDoubtError(
                        -1,
                        f"network error at {self.session.base}: {cause(exc)}",
                        "the request may have reached WeChat; it was not retried",
                    ) from None
                if _never_sent(exc):
                    unreachable = cause(exc)
                last = (-1, f"network error: {cause(exc)}")
            except requests.RequestException as exc:
                last = (-1, f"HTTP error: {cause(exc)}")
            delay = min(5.0, 0.1 * 2 ** min(attempt, 8)) * (0.5 + self.rng.random() / 2)
            elapsed = time.monotonic() - started
            budget = self.retry_budget_s
            if unreachable:
                budget = min(budget, UNREACHABLE_BUDGET_S)
            if elapsed + delay > budget:
                if unreachable:
                    raise WeChatUnreachableError(self.session.base, unreachable, UNREACHABLE_HINT)
                if last[0] == -1:
                    raise WeChatUnavailableError(
                        -1,
                        f"{last[1]} at {self.session.base}",
                        f"gave up after {attempt} attempts in {elapsed:.1f} s "
                        f"(BANKWX_RETRY_BUDGET_S={self.retry_budget_s:g})",
                    )
                raise WeChatUnavailableError(
                    last[0],
                    last[1],
                    f"{codes.explain(last[0])}; gave up after {attempt} attempts in "
                    f"{elapsed:.1f} s (BANKWX_RETRY_BUDGET_S={self.retry_budget_s:g})",
                )
            log.info("WeChat %s (%s); retry %d in %.2f s", last[0], last[1], attempt, delay)
            self.sleep(delay)

    # --- endpoints used across features ---------------------------------------------------------

    def callback_ips(self) -> list[str]:
        return list(self.get("/cgi-bin/getcallbackip").get("ip_list", []))

    def close(self) -> None:
        self.session.close()


def _never_sent(exc: Exception) -> bool:
    """True when the request cannot have reached WeChat (refused, or no connection made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolution" in text


# what a network failure's text says, and how we say it (first match wins)
_CAUSES = (
    ("Connection refused", "connection refused"),
    ("NameResolution", "host name not found"),
    ("Name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("Temporary failure in name resolution", "host name not found"),
    ("Network is unreachable", "network unreachable"),
    ("No route to host", "no route to host"),
    ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ("SSLError", "TLS handshake failed"),
    ("Connection reset", "connection reset"),
    ("RemoteDisconnected", "connection closed without an answer"),
)


def cause(exc: Exception) -> str:
    """A network failure in a few words: 'connection refused', 'host name not found', ..."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "no answer in time"
    text = repr(exc)
    for needle, words in _CAUSES:
        if needle in text:
            return words
    return type(exc).__name__


def _body(exc: WeChatClientException) -> dict[str, Any]:
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _verb(method: str | bytes) -> str:
    return (method.decode() if isinstance(method, bytes) else method).upper()

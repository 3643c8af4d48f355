"""The HTTP/JSON adapter to the bank's service bus (``BankBackend`` over ``requests``).

What it promises, whatever the caller:

- never plain HTTP to a host that is not this machine (``check_url``), no redirects followed,
  no proxies or ``.netrc`` from the environment;
- a per-call timeout (3 s by default, at most 10 s) on connecting and on the whole answer;
  only GETs are retried: once, at once, when the back-end could not be reached or answered
  502, 503 or 504 within the timeout;
- a circuit breaker: after 5 consecutive failed attempts (5xx answers, timeouts, a back-end
  that cannot be reached; a GET's retry is an attempt) it opens and every call fails at once
  (``breaker_open``); after 30 s one call probes, and its outcome closes or reopens it. Any
  other answer (2xx, 3xx, 4xx) shows the back-end is up and resets the count;
- at most 16 calls in flight: the 17th fails at once (``busy``);
- bodies and the key are never logged: a log line names the endpoint (its template, not the
  path with a customer id), the outcome and the milliseconds.

Both refusals come as ``BackendUnavailableError``, which the domain answers with
系统繁忙，请稍后再试.
Metrics: ``bankwx_backend_calls_total{endpoint,outcome}``,
``bankwx_backend_call_seconds{endpoint}``, ``bankwx_backend_breaker_open``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from bankwx_cli import __version__
from bankwx_cli.backend import models
from bankwx_cli.backend.errors import (
    BAD_ANSWER,
    BREAKER_OPEN,
    BUSY,
    SERVER_ERROR,
    TIMEOUT,
    UNREACHABLE,
    BackendConfigError,
    BackendRefusedError,
    BackendUnavailableError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_MS = 3000
MIN_TIMEOUT_MS = 100
MAX_TIMEOUT_MS = 10_000
MAX_IN_FLIGHT = 16
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN_S = 30.0
MAX_ANSWER_BYTES = 1024 * 1024
RETRIED_STATUSES = frozenset({502, 503, 504})


# --- the address --------------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """Whether host names this machine: ``localhost`` or a loopback address (no DNS asked)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The back-end's base URL without a trailing slash, when it is acceptable: https, or
    http to this machine; a host; no user name, password, query or fragment.

    Raises BackendConfigError naming the problem and the fix.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BackendConfigError(f"back-end URL '{url}' is not a valid URL.") from None
    del port  # read only to have urlsplit check it
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendConfigError(
            f"back-end URL '{url}' is invalid: use https://HOST[:PORT][/PATH]."
        )
    if parts.username is not None or parts.password is not None:
        raise BackendConfigError(
            f"back-end URL '{url}' holds a user name or password: give the key with "
            "--api-key - (read from standard input) instead."
        )
    if parts.query or parts.fragment:
        raise BackendConfigError(
            f"back-end URL '{url}' has a query or fragment: give the base URL only."
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise BackendConfigError(
            f"back-end URL '{url}' is plain HTTP to '{parts.hostname}', a host that is not "
            "this machine: use https (plain HTTP is allowed to 127.0.0.1 or localhost only)."
        )
    return url.strip().rstrip("/")


def check_timeout_ms(value: int) -> int:
    """The timeout when within bounds; BackendConfigError otherwise."""
    if not MIN_TIMEOUT_MS <= value <= MAX_TIMEOUT_MS:
        raise BackendConfigError(
            f"--timeout-ms {value} is out of range: use {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS} "
            f"milliseconds (default {DEFAULT_TIMEOUT_MS})."
        )
    return value


# --- metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Metrics:
    calls: Any  # prometheus_client Counter, Histogram, Gauge
    seconds: Any
    breaker_open: Any


_metrics_lock = threading.Lock()


@cache
def _metrics() -> _Metrics:
    """Made on first use: prometheus_client is imported by the commands that call the
    back-end, not by every command that loads this module (start-up). A metric registers
    once per process, whatever the number of adapters."""
    with _metrics_lock:
        return _made_metrics()


@cache
def _made_metrics() -> _Metrics:
    from prometheus_client import Counter, Gauge, Histogram

    return _Metrics(
        Counter("bankwx_backend_calls_total", "Back-end calls", ["endpoint", "outcome"]),
        Histogram(
            "bankwx_backend_call_seconds",
            "Back-end call time",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15),
        ),
        Gauge("bankwx_backend_breaker_open", "1 while the back-end circuit breaker is open"),
    )


# --- the breaker --------------------------------------------------------------------------------


class Breaker:
    """Opens after ``threshold`` consecutive failures (5xx, timeouts, unreachable); while open
    every call is refused at once; after ``cooldown_s`` one call probes: success closes it,
    failure opens it again for another ``cooldown_s``. Thread-safe. ``now`` is injectable."""

    def __init__(
        self,
        threshold: int = BREAKER_THRESHOLD,
        cooldown_s: float = BREAKER_COOLDOWN_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._now = now
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go now."""
        return self.admit() is not None

    def admit(self) -> str | None:
        """``"call"`` when closed, ``"probe"`` for the one call after the cool-down, None
        while open (or while another call probes)."""
        with self._lock:
            if self._opened_at is None:
                return "call"
            if not self._probing and self._now() - self._opened_at >= self.cooldown_s:
                self._probing = True
                return "probe"
            return None

    def success(self) -> None:
        """The back-end answered (2xx, or a 4xx: it is up and said no)."""
        with self._lock:
            was_open = self._opened_at is not None
            self._failures = 0
            self._opened_at = None
            self._probing = False
        if was_open:
            log.warning("back-end breaker closed: the back-end answers again")
            _metrics().breaker_open.set(0)

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            opens = self._probing or (self._opened_at is None and self._failures >= self.threshold)
            if opens:
                self._opened_at = self._now()
                self._probing = False
        if opens:
            log.warning("back-end breaker open: calls fail at once for %.0f s", self.cooldown_s)
            _metrics().breaker_open.set(1)

    def abandon(self) -> None:
        """A probe that ended without an answer either way: let another call probe."""
        with self._lock:
            self._probing = False


# --- the adapter --------------------------------------------------------------------------------


class _TooLarge(Exception):
    """An answer past MAX_ANSWER_BYTES."""


class _Attempt(Exception):
    """One attempt's failure, inside the adapter: retried (GET) or raised as is."""

    def __init__(self, error: BackendUnavailableError, retry: bool) -> None:
        self.error = error
        self.retry = retry


class BackendClient:
    """``BankBackend`` over HTTP/JSON. One per process (``AppContext.backend``); thread-safe."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        client_cert: tuple[str, str] | None = None,
        ca_file: str | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        breaker: Breaker | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.base_url = check_url(base_url)
        self.timeout_s = check_timeout_ms(timeout_ms) / 1000
        self.breaker = breaker or Breaker()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.max_in_flight = max_in_flight
        session = requests.Session()
        session.trust_env = False  # no proxies, .netrc or CA bundles from the environment
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_in_flight, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = f"bankwx/{__version__}"
        session.headers["Accept"] = "application/json"
        if api_key:
            session.headers["Authorization"] = f"Bearer {api_key}"
        if client_cert is not None:
            session.cert = client_cert
        session.verify = ca_file or True  # a CA file: the bank's own CA, instead of the system's
        self._session = session

    def __repr__(self) -> str:  # never the key
        return f"BackendClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    # --- the contract's paths -------------------------------------------------------------

    def health(self) -> models.Health:
        return self._call("GET", "/v1/health", "/v1/health", models.parse_health)

    def verify_customer(self, card: str, phone: str) -> models.CustomerMatch:
        body = {"card": card, "phone": phone}
        path = "/v1/customers/verify"
        return self._call("POST", path, path, models.parse_customer_match, body=body)

    def send_otp(self, customer_id: str) -> models.OtpRequest:
        body = {"customer_id": customer_id}
        return self._call("POST", "/v1/otp/send", "/v1/otp/send", models.parse_otp_request, body)

    def verify_otp(self, request_id: str, code: str) -> models.OtpResult:
        body = {"request_id": request_id, "code": code}
        path = "/v1/otp/verify"
        return self._call("POST", path, path, models.parse_otp_result, body=body)

    def customer(self, customer_id: str) -> models.Customer:
        path = f"/v1/customers/{_segment(customer_id)}"
        return self._call("GET", "/v1/customers/{id}", path, models.parse_customer)

    def accounts(self, customer_id: str) -> list[models.BankAccount]:
        path = f"/v1/customers/{_segment(customer_id)}/accounts"
        return self._call("GET", "/v1/customers/{id}/accounts", path, models.parse_accounts)

    def transactions(self, customer_id: str, limit: int = 5) -> list[models.Transaction]:
        path = f"/v1/customers/{_segment(customer_id)}/transactions?limit={int(limit)}"
        endpoint = "/v1/customers/{id}/transactions"
        return self._call("GET", endpoint, path, models.parse_transactions)

    def card_bill(self, customer_id: str) -> models.CardBill:
        path = f"/v1/customers/{_segment(customer_id)}/card-bill"
        return self._call("GET", "/v1/customers/{id}/card-bill", path, models.parse_card_bill)

    def deposit_rates(self) -> models.RateTable:
        path = "/v1/rates/deposit"
        return self._call("GET", path, path, models.parse_rate_table)

    def loan_rates(self) -> models.RateTable:
        return self._call("GET", "/v1/rates/loan", "/v1/rates/loan", models.parse_rate_table)

    def fx_rates(self) -> models.FxTable:
        return self._call("GET", "/v1/rates/fx", "/v1/rates/fx", models.parse_fx_table)

    def products(self) -> list[models.Product]:
        return self._call("GET", "/v1/products", "/v1/products", models.parse_products)

    def customer_phone(self, customer_id: str) -> str:
        """The customer's mobile number on file (``GET /v1/customers/{id}``'s ``phone``), for
        an SMS at the moment of sending: never store it. BackendRefusedError 404
        ``unknown_customer``, or 422 ``no_phone`` when the back-end has none."""
        found = self.customer(customer_id).phone
        if not found:
            raise BackendRefusedError(
                422, "no_phone", "the back-end has no phone for the customer", "/v1/customers/{id}"
            )
        return found

    def send_sms(self, phone: str, text: str, idempotency_key: str) -> models.SmsReceipt:
        """Send one SMS through the gateway (``POST /v1/sms/send``). The gateway sends a key
        once in 24 hours: a repeat answers ``duplicate`` and sends nothing, so a caller in doubt
        sends again with the same key. Never retried here (a POST): BackendUnavailableError
        for 5xx and timeouts (try later, same key), BackendRefusedError for 4xx (give up)."""
        body = {"phone": phone, "text": text, "idempotency_key": idempotency_key}
        path = "/v1/sms/send"
        return self._call("POST", path, path, models.parse_sms_receipt, body=body)

    # --- one call ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        path: str,
        parse: Callable[[Any], T],
        body: dict[str, Any] | None = None,
    ) -> T:
        """One call of the contract: the limits, the breaker, one retry for a GET."""
        metrics = _metrics()
        if not self._slots.acquire(blocking=False):
            metrics.calls.labels(endpoint, BUSY).inc()
            raise BackendUnavailableError(
                BUSY, f"the back-end has {self.max_in_flight} calls in flight: try again later."
            )
        started = time.monotonic()
        admitted = None
        try:
            admitted = self.breaker.admit()
            if admitted is None:
                metrics.calls.labels(endpoint, BREAKER_OPEN).inc()
                raise BackendUnavailableError(
                    BREAKER_OPEN,
                    f"the back-end at {self.base_url} failed {self.breaker.threshold} times in "
                    "a row; calls are paused for a while (circuit breaker open).",
                )
            attempts = 2 if method == "GET" else 1
            for attempt in range(attempts):
                try:
                    result = self._attempt(method, endpoint, path, parse, body)
                except _Attempt as failed:
                    last = attempt == attempts - 1
                    slow = time.monotonic() - started > self.timeout_s  # retry quick ones
                    if last or not failed.retry or slow or self.breaker.is_open:
                        self._count(endpoint, failed.error.reason, started)
                        raise failed.error from None
                    continue
                except BackendRefusedError:
                    self._count(endpoint, "refused", started)
                    raise
                self._count(endpoint, "ok", started)
                return result
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
        finally:
            if admitted == "probe":
                self.breaker.abandon()
            self._slots.release()

    def _count(self, endpoint: str, outcome: str, started: float) -> None:
        elapsed = time.monotonic() - started
        metrics = _metrics()
        metrics.calls.labels(endpoint, outcome).inc()
        metrics.seconds.labels(endpoint).observe(elapsed)
        log.info("back-end %s: %s in %.0f ms", endpoint, outcome, elapsed * 1000)

    def _attempt(
        self,
        method: str,
        endpoint: str,
        path: str,
        parse: Callable[[Any], T],
        body: dict[str, Any] | None,
    ) -> T:
        where = f"the back-end at {self.base_url} ({endpoint})"
        deadline = time.monotonic() + self.timeout_s
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=body,
                timeout=(self.timeout_s, self.timeout_s),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            self.breaker.failure()
            ms = round(self.timeout_s * 1000)
            error = BackendUnavailableError(TIMEOUT, f"{where} did not answer within {ms} ms.")
            raise _Attempt(error, retry=False) from None
        except requests.exceptions.SSLError as exc:
            self.breaker.failure()
            error = BackendUnavailableError(
                UNREACHABLE, f"{where}: TLS failed ({_reason(exc)}). Check the URL and certificate."
            )
            raise _Attempt(error, retry=False) from None
        except requests.RequestException as exc:
            self.breaker.failure()
            error = BackendUnavailableError(UNREACHABLE, f"cannot reach {where} ({_reason(exc)}).")
            raise _Attempt(error, retry=True) from None
        try:
            status = response.status_code
            try:
                content = _read(response, deadline)
            except requests.Timeout:
                self.breaker.failure()
                ms = round(self.timeout_s * 1000)
                error = BackendUnavailableError(
                    TIMEOUT, f"{where} did not finish its answer within {ms} ms."
                )
                raise _Attempt(error, retry=False) from None
            except _TooLarge:
                error = BackendUnavailableError(
                    BAD_ANSWER, f"{where} answered more than {MAX_ANSWER_BYTES} bytes; refused."
                )
                raise _Attempt(error, retry=False) from None
            except requests.RequestException as exc:
                self.breaker.failure()
                error = BackendUnavailableError(
                    UNREACHABLE, f"{where} broke off its answer ({_reason(exc)})."
                )
                raise _Attempt(error, retry=True) from None
        finally:
            response.close()
        if status >= 500:
            self.breaker.failure()
            code = _error_code(content)
            error = BackendUnavailableError(
                SERVER_ERROR,
                f"{where} answered HTTP {status}{f' {code}' if code else ''}.",
                status=status,
            )
            raise _Attempt(error, retry=status in RETRIED_STATUSES)
        self.breaker.success()  # it answered: it is up, whatever it said
        if 300 <= status < 400:
            error = BackendUnavailableError(
                BAD_ANSWER,
                f"{where} answered a redirect (HTTP {status}); bankwx follows none: set the "
                "back-end's final URL with bankwx backend set --url.",
                status=status,
            )
            raise _Attempt(error, retry=False)
        if status >= 400:
            code, detail = _error(content)
            raise BackendRefusedError(status, code, detail, endpoint)
        try:
            return parse(json.loads(content))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            error = BackendUnavailableError(
                BAD_ANSWER, f"{where} answered outside the contract ({_short(str(exc))})."
            )
            raise _Attempt(error, retry=False) from None


def _segment(value: str) -> str:
    return quote(value, safe="")


def _read(response: requests.Response, deadline: float) -> bytes:
    """The answer's bytes, refused past MAX_ANSWER_BYTES (_TooLarge); requests.Timeout when
    the body is still coming at the deadline (a read timeout bounds each read, not all)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        if time.monotonic() > deadline:
            raise requests.Timeout("the answer did not end in time")
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


_CAUSES = (
    "Connection refused",
    "Name or service not known",
    "timed out",
    "certificate verify failed",
    "Connection reset",
    "No route to host",
)


def _reason(exc: BaseException) -> str:
    """A short cause for a failed request, without URLs (they may carry a customer id)."""
    cause: BaseException = exc
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    for candidate in (exc, cause):
        text = str(candidate)
        for words in _CAUSES:
            if words in text:
                return words.lower()
    return type(exc).__name__


def _short(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def _error(content: bytes) -> tuple[str, str]:
    """The error's code and message from ``{"error": {"code", "message"}}``; placeholders when
    the body does not follow it."""
    try:
        data = json.loads(content)
        error = data["error"]
        code, message = error["code"], error["message"]
        if isinstance(code, str) and isinstance(message, str):
            return _short(code), _short(message)
    except (ValueError, TypeError, KeyError, RecursionError):
        pass
    return "unknown", "no error body"


def _error_code(content: bytes) -> str:
    code, _ = _error(content)
    return "" if code == "unknown" else code

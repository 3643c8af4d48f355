"""A small synchronous client of the simulator's ``/sim/`` endpoints, for the command layer."""

from __future__ import annotations

import ipaddress
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from bankwx_cli.errors import BankwxError, NotFoundError, ValidationError

DEFAULT_URL = "http://127.0.0.1:8081"
# A follower's action may wait for 3 deliveries of WeChat's 5-second timeout.
SEND_TIMEOUT = 60.0


def _problem(url: str) -> str:
    """Why url is not a simulator address on this machine ('' when it is one)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "not an http:// URL"
    if host.lower() != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address is None or not address.is_loopback:
            return "not on this machine"
    return ""


def is_local(url: str) -> bool:
    """Whether url is an http(s) address on this machine (loopback)."""
    return not _problem(url)


def require_local(url: str, source: str = "") -> str:
    """``url`` without a trailing slash, if it points at this machine (loopback only).

    Raises ValidationError otherwise, naming source (where the URL came from) when given.
    """
    problem = _problem(url)
    if problem:
        where = f" ({source})" if source else ""
        fix = f"use a loopback address such as {DEFAULT_URL}"
        if source:
            fix += " in --sim or BANKWX_SIM"
        raise ValidationError(f"simulator URL '{url}'{where} is {problem}; {fix}.")
    return url.rstrip("/")


class SimDriver:
    """Drive a running simulator: accounts, followers' actions, records, clock and faults.

    Every method raises BankwxError when the simulator cannot be reached ("no simulator at
    URL") and ValidationError when it refuses a value (its HTTP 400 message).
    """

    def __init__(
        self, base_url: str = DEFAULT_URL, *, timeout: float = 10.0, source: str = ""
    ) -> None:
        self.base_url = require_local(base_url, source)
        self.source = source  # where the address came from, for messages (--sim/BANKWX_SIM)
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SimDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = self._client.request(method, path, json=body, params=params, **extra)
        except httpx.ConnectError as exc:
            where = f" ({self.source})" if self.source else ""
            hint = " or point --sim (BANKWX_SIM) at it" if self.source else ""
            raise BankwxError(
                f"no simulator at {self.base_url}{where}. Start it with bankwx sim api{hint}."
            ) from exc
        except httpx.TimeoutException as exc:
            raise BankwxError(f"the simulator at {self.base_url} did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise BankwxError(f"the simulator at {self.base_url} failed: {exc}") from exc
        try:
            value = response.json()
        except ValueError:
            value = None
        if response.status_code >= 400:
            message = value.get("error") if isinstance(value, dict) else None
            message = message or f"HTTP {response.status_code}"
            if response.status_code == 400:
                raise ValidationError(f"the simulator refused: {message}")
            raise BankwxError(f"the simulator at {self.base_url} answered: {message}")
        return value

    # -- accounts and followers -------------------------------------------------------------

    def register_account(self, **values: Any) -> dict[str, Any]:
        """Register (or replace) an account: appid, secret, name, token, aes_key, mode
        (plain|compatible|safe), original_id, callback_url, ip_allowlist."""
        result: dict[str, Any] = self._call("POST", "/sim/accounts", body=values)
        return result

    def accounts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/sim/accounts")
        return result

    def verify_url(self, appid: str) -> dict[str, Any]:
        """Run WeChat's URL check against the account's callback (GET with echostr)."""
        result: dict[str, Any] = self._call(
            "POST", f"/sim/accounts/{appid}/verify", timeout=SEND_TIMEOUT
        )
        return result

    def followers(
        self, appid: str, limit: int = 100, offset: int = 0, include_unsubscribed: bool = False
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"appid": appid, "limit": limit, "offset": offset}
        if include_unsubscribed:
            params["all"] = 1
        result: list[dict[str, Any]] = self._call("GET", "/sim/followers", params=params)
        return result

    def pick_openid(self, appid: str) -> str:
        """A subscribed follower's openid. Raises NotFoundError when the account has none."""
        followers = self.followers(appid, limit=1)
        if not followers:
            raise NotFoundError(f"account '{appid}' has no followers in the simulator.")
        return str(followers[0]["openid"])

    def send(
        self,
        appid: str,
        openid: str,
        text: str | None = None,
        event: str | None = None,
        key: str | None = None,
        lat: float | None = None,
        lng: float | None = None,
        label: str | None = None,
        msg_type: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A follower acts; returns ``{"status": "replied"|"success"|"failed", "msg_type",
        "content", "deliveries", "reason", "msgid", "event", "shown"}``.

        ``extra`` passes more fields of the action (scale, precision, ticket, url, menu_id,
        scan_type, scan_result, bizmsgmenuid, fields, ...).
        """
        given = {
            "text": text,
            "event": event,
            "key": key,
            "lat": lat,
            "lng": lng,
            "label": label,
            "msg_type": msg_type,
            **extra,
        }
        body: dict[str, Any] = {"appid": appid}
        body.update({k: v for k, v in given.items() if v is not None})
        result: dict[str, Any] = self._call(
            "POST", f"/sim/followers/{openid}/send", body=body, timeout=SEND_TIMEOUT
        )
        return result

    # -- records, clock, faults -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/sim/state")
        return result

    def log(self, **filters: Any) -> list[dict[str, Any]]:
        """The call log; filters: kind (api|callback), path, appid, since (a seq number), limit."""
        result: list[dict[str, Any]] = self._call("GET", "/sim/log", params=filters)
        return result

    def delivered(self, **filters: Any) -> list[dict[str, Any]]:
        """What followers received; filters: appid, openid, kind, since (a seq number), limit."""
        result: list[dict[str, Any]] = self._call("GET", "/sim/delivered", params=filters)
        return result

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/sim/clock", body={"advance": seconds})
        return result

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Any of fail_rate, latency_ms, seed, callback_timeout, quota_scale, kinds, quotas."""
        result: dict[str, Any] = self._call("POST", "/sim/faults", body=faults)
        return result

    def reset(self, everything: bool = False) -> dict[str, Any]:
        """Forget tokens, counters, windows, log and deliveries (and accounts with
        ``everything``)."""
        result: dict[str, Any] = self._call("POST", "/sim/reset", body={"all": everything})
        return result

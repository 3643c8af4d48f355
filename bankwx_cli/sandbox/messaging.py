"""The sandbox's SMS gateway and core system, as state: the messages "sent" (``GET
/sandbox/sms``) with the idempotency keys seen in the last 24 hours, and where transactions are
pushed as alert events (``--alerts-url`` with the key in ``BANKWX_SANDBOX_ALERT_KEY``)."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

KEY_TTL_S = 24 * 3600  # a repeated idempotency key sends nothing for this long
PUSH_TIMEOUT_S = 30.0
INTAKE_PATH = "/api/v1/alerts"


@dataclass
class Sms:
    id: str
    phone: str
    text: str
    idempotency_key: str
    sent_at: str
    sent_ts: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phone": self.phone,
            "text": self.text,
            "idempotency_key": self.idempotency_key,
            "sent_at": self.sent_at,
        }


@dataclass
class SmsGateway:
    """Messages sent, oldest first, and the last message of each idempotency key."""

    sent: list[Sms] = field(default_factory=list)
    by_key: dict[str, Sms] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, phone: str, text: str, key: str, now: float, at: str) -> tuple[Sms, bool]:
        """(the message, whether the key was seen within 24 hours: then nothing is sent)."""
        with self.lock:
            seen = self.by_key.get(key)
            if seen is not None and now - seen.sent_ts < KEY_TTL_S:
                return seen, True
            sms = Sms("sms-" + secrets.token_hex(8), phone, text, key, at, now)
            self.sent.append(sms)
            self.by_key[key] = sms
            return sms, False

    def listing(self) -> list[dict[str, Any]]:
        with self.lock:
            return [s.to_json() for s in self.sent]

    def clear(self) -> None:
        with self.lock:
            self.sent.clear()
            self.by_key.clear()


@dataclass(frozen=True)
class AlertFeed:
    """Where the core system pushes events (None: nowhere) and with which key."""

    url: str | None = None
    key: str = ""


def intake_url(url: str) -> str:
    """The intake's URL: a base URL (no path) gets ``/api/v1/alerts``. ValueError for a URL
    that is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--alerts-url '{url}' is not an http(s)://HOST[:PORT][/PATH] URL")
    return url.rstrip("/") + INTAKE_PATH if parts.path in ("", "/") else url


def push(feed: AlertFeed, event: dict[str, Any]) -> tuple[int, Any]:
    """POST one event to the intake as a bank system would: (HTTP status, the answer's JSON or
    text). Status 0 when the intake could not be reached. Blocking: run it off the loop."""
    if feed.url is None:
        raise ValueError("no --alerts-url: the sandbox pushes events nowhere")
    request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked by intake_url
        feed.url,
        data=json.dumps(event, ensure_ascii=False).encode("utf-8"),
        headers={"Authorization": f"Bearer {feed.key}", "Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=PUSH_TIMEOUT_S) as answer:
            return answer.status, _decoded(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decoded(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        return 0, f"cannot reach {feed.url}: {exc}"


def _decoded(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")

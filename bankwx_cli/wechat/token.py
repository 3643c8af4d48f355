"""The access token: shared by every process on a store, fetched by one at a time.

``TokenStore`` is what the client needs from a store (context.py passes an implementation).
A process that finds no fresh token takes a lease in the store and fetches; the others wait
and reuse what it saved. A killed holder delays the others by the lease, never blocks them.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bankwx_cli.errors import WeChatUnavailableError

REFRESH_MARGIN_S = 300.0  # refresh when less than this remains (stable tokens rotate then)
POLL_S = 0.05


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: float
    fetched_at: float


class TokenStore(Protocol):
    def load(self, appid: str) -> CachedToken | None: ...

    def save(self, appid: str, token: CachedToken) -> None: ...

    def discard(self, appid: str, token: str) -> None:
        """Forget token if it is still the stored one (WeChat refused it)."""

    def acquire(self, appid: str, holder: str, ttl: float, now: float) -> bool:
        """Take the refresh lease unless another live holder has it."""

    def release(self, appid: str, holder: str) -> None: ...


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class TokenManager:
    """Hands out a valid token for one appid, refreshing it across processes."""

    def __init__(
        self,
        appid: str,
        store: TokenStore,
        fetch: Callable[[], tuple[str, int]],
        lease_s: float = 15.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.appid = appid
        self.store = store
        self.fetch = fetch
        self.lease_s = lease_s
        self.now = now
        self.sleep = sleep
        self.holder = holder_id()
        self._cached: CachedToken | None = None

    def get(self) -> str:
        """A valid token. Raises what fetch raises, or WeChatUnavailableError on a timeout."""
        cached = self._cached
        if cached and cached.expires_at - self.now() > REFRESH_MARGIN_S:
            return cached.token
        deadline = self.now() + 2 * self.lease_s + 5
        while True:
            current = self.store.load(self.appid)
            now = self.now()
            if current and current.expires_at - now > REFRESH_MARGIN_S:
                self._cached = current
                return current.token
            if self.store.acquire(self.appid, self.holder, self.lease_s, now):
                try:
                    current = self.store.load(self.appid)  # someone may have just saved one
                    if current and current.expires_at - self.now() > REFRESH_MARGIN_S:
                        self._cached = current
                        return current.token
                    token, expires_in = self.fetch()
                    fetched_at = self.now()
                    fresh = CachedToken(token, fetched_at + expires_in, fetched_at)
                    self.store.save(self.appid, fresh)
                    self._cached = fresh
                    return token
                finally:
                    self.store.release(self.appid, self.holder)
            if current and current.expires_at - now > 30:
                return current.token  # still valid while another process refreshes it
            if now > deadline:
                raise WeChatUnavailableError(
                    -1,
                    "token refresh timed out",
                    f"another process held the token lease for {self.appid} too long",
                )
            self.sleep(POLL_S)

    def invalidate(self, token: str) -> None:
        """WeChat refused token: forget it here and in the store (if still stored)."""
        if self._cached and self._cached.token == token:
            self._cached = None
        self.store.discard(self.appid, token)

    def status(self) -> CachedToken | None:
        return self.store.load(self.appid)

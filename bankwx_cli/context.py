"""AppContext: settings, store, clock, operator, master key and WeChat clients.

This is the one place that wires storage and the WeChat client together; commands and the
server receive an AppContext and hand it to the domain.
"""

from __future__ import annotations

import os
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING

from bankwx_cli.clock import Clock, OffsetClock, SystemClock
from bankwx_cli.errors import KeyError_
from bankwx_cli.settings import Settings
from bankwx_cli.storage import Store, open_store

if TYPE_CHECKING:  # imported when first used: cryptography and wechatpy cost start-up time
    from bankwx_cli.backend.client import BackendClient
    from bankwx_cli.domain.identity import Identity
    from bankwx_cli.keys import MasterKey
    from bankwx_cli.models.accounts import Account
    from bankwx_cli.wechat.client import WeChatClient
    from bankwx_cli.wechat.token import CachedToken


class SealedTokens:
    """The client's TokenStore over the store: tokens sealed with the master key."""

    def __init__(self, store: Store, key: MasterKey) -> None:
        self.store = store
        self.key = key

    def _purpose(self, appid: str) -> str:
        return f"access_token:{appid}"

    def load(self, appid: str) -> CachedToken | None:
        from bankwx_cli.wechat.token import CachedToken

        stored = self.store.tokens.load(appid)
        if stored is None:
            return None
        token = self.key.open(stored.token_enc, self._purpose(appid))
        return CachedToken(token, stored.expires_at, stored.fetched_at)

    def save(self, appid: str, token: CachedToken) -> None:
        sealed = self.key.seal(token.token, self._purpose(appid))
        self.store.tokens.save(appid, sealed, token.expires_at, token.fetched_at)

    def discard(self, appid: str, token: str) -> None:
        sealed = self.store.tokens.sealed_current(appid)
        if sealed is not None and self.key.open(sealed, self._purpose(appid)) == token:
            self.store.tokens.discard(appid, sealed)

    def acquire(self, appid: str, holder: str, ttl: float, now: float) -> bool:
        return self.store.tokens.acquire(appid, holder, now + ttl, now)

    def release(self, appid: str, holder: str) -> None:
        self.store.tokens.release(appid, holder)


class BufferedRecorder:
    """Counts WeChat calls per account, endpoint and minute (``api_calls``), and per hour in the
    API report's roll-up (calls, errors, retries, latency buckets); writes both in one
    transaction per flush. Minutes and hours are of ``clock`` (the injected one, not the wall
    clock)."""

    FLUSH_S = 2.0

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._rows: dict[tuple[str, str, str, str, int], list[float]] = {}
        self._hours: dict[tuple[str, str, str], list[int]] = {}
        self._latency: dict[tuple[str, str, str, int], int] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def record(
        self,
        appid: str,
        endpoint: str,
        outcome: str,
        errcode: int | None,
        latency_ms: float,
        retry: bool = False,
    ) -> None:
        from bankwx_cli.models.reports import bucket_of

        now = self.clock.now()
        bucket = now.strftime("%Y-%m-%dT%H:%M:00Z")
        hour = now.strftime("%Y-%m-%dT%H:00:00Z")
        key = (appid, endpoint, bucket, outcome, errcode or 0)
        with self._lock:
            entry = self._rows.setdefault(key, [0, 0.0, 0.0, 0])
            entry[0] += 1
            entry[1] += latency_ms
            entry[2] = max(entry[2], latency_ms)
            entry[3] += int(retry)
            counts = self._hours.setdefault((appid, hour, endpoint), [0, 0, 0])
            counts[0] += 1
            counts[1] += int(outcome != "ok")
            counts[2] += int(retry)
            slot = (appid, hour, endpoint, bucket_of(latency_ms))
            self._latency[slot] = self._latency.get(slot, 0) + 1
            due = time.monotonic() - self._last_flush > self.FLUSH_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, {}
            hours, self._hours = self._hours, {}
            latency, self._latency = self._latency, {}
            self._last_flush = time.monotonic()
        if rows:
            from bankwx_cli.models.wechat import ApiCallCount, ApiHourCount, ApiLatencyCount

            self.store.api_calls.add(
                [
                    ApiCallCount(*k, calls=int(v[0]), total_ms=v[1], max_ms=v[2],
                                 retries=int(v[3]))
                    for k, v in rows.items()
                ],
                hourly=[ApiHourCount(*k, *v) for k, v in hours.items()],
                latency=[ApiLatencyCount(*k, n=n) for k, n in latency.items()],
            )  # fmt: skip


PRIVATE_UMASK = 0o077


class AppContext:
    """Everything a command, the server or a test hands the domain.

    Making one sets the process's umask to 077: whatever bankwx then creates (a pulled menu,
    an export, a folder) is its owner's alone, as the store, its WAL and shared memory, its
    backups and the key file are (those are made 0600 explicitly, whatever the umask).
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        store: Store | None = None,
        key: MasterKey | None = None,
    ) -> None:
        os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)  # tighten only, never loosen
        self.settings = settings
        offset = settings.test_clock_offset_s
        self.clock: Clock = clock or (OffsetClock(offset) if offset else SystemClock())
        self._store = store
        self._key = key
        self._clients: dict[str, WeChatClient] = {}
        self._recorder: BufferedRecorder | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings.db, key=lambda: self.key)
        return self._store

    @cached_property
    def identity(self) -> Identity:
        """Who is acting: operator, login user, host (the store's identity mode decides)."""
        from bankwx_cli.domain.identity import resolve  # the domain decides; resolved once

        return resolve(self)

    @property
    def operator(self) -> str:
        """The acting operator's name (see ``identity``)."""
        return self.identity.operator

    def forget_identity(self) -> None:
        """Resolve the identity again on next use (after init maps the first administrator)."""
        self.__dict__.pop("identity", None)

    @cached_property
    def key(self) -> MasterKey:
        """The master key, checked against the store's fingerprint."""
        if self._key is None:
            from bankwx_cli.keys import load_key

            self._key = load_key(self.settings.master_key, self.settings.key_file)
        key = self._key
        expected = self.store.get_meta("key_fingerprint")
        if expected is not None and expected != key.fingerprint:
            raise KeyError_(
                f"wrong master key for the store at {self.settings.db}: the key's fingerprint "
                f"is {key.fingerprint}, the store expects {expected}. Set BANKWX_MASTER_KEY or "
                "BANKWX_KEY_FILE to the key this store was created with."
            )
        return key

    def client(self, account: Account) -> WeChatClient:
        """The WeChat client of an account (one per account and process)."""
        client = self._clients.get(account.name)
        if client is None:
            from bankwx_cli.domain.accounts import secrets  # domain decides what is secret
            from bankwx_cli.wechat.client import WeChatClient

            if self._recorder is None:
                self._recorder = BufferedRecorder(self.store, self.clock)
            client = WeChatClient(
                account.appid,
                secrets(self, account).secret.reveal(),
                base_url=self.settings.wechat_base,
                tokens=SealedTokens(self.store, self.key),
                token_mode=account.token_mode,
                recorder=self._recorder,
                retry_budget_s=self.settings.retry_budget_s,
                lease_s=self.settings.token_lease_s,
                now=self.clock.time,  # token expiry and the refresh lease on the injected clock
            )
            self._clients[account.name] = client
        return client

    @cached_property
    def backend(self) -> BackendClient:
        """The adapter to the bank's back-end (one per process: its breaker and in-flight
        limit are the process's). Raises NotFoundError when the store has none."""
        from bankwx_cli.domain.backend import build_adapter  # the domain opens the key

        return build_adapter(self)

    @cached_property
    def sms_gateway(self) -> BackendClient:
        """The back-end's SMS gateway (``send_sms``; its own URL and key, or the back-end's).
        Raises NotFoundError when the store has no back-end."""
        from bankwx_cli.domain.backend import build_adapter

        return build_adapter(self, sms=True)

    def forget_backend(self) -> None:
        """Build the adapters again on next use (after backend set changed them)."""
        for name in ("backend", "sms_gateway"):
            adapter = self.__dict__.pop(name, None)
            if adapter is not None:
                adapter.close()

    def close(self) -> None:
        self.forget_backend()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._recorder is not None and self._store is not None:
            self._recorder.flush()
        if self._store is not None:
            self._store.close()
            self._store = None

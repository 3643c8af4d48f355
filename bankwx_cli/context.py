"""AppContext: settings, store, clock, operator, master key and WeChat clients.

This is the one place that wires storage and the WeChat client together; commands and the
server receive an AppContext and hand it to the domain.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from bankwx_cli.clock import Clock, SystemClock
from bankwx_cli.errors import KeyError_
from bankwx_cli.keys import MasterKey, load_key
from bankwx_cli.settings import Settings
from bankwx_cli.storage import Store, open_store


class AppContext:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        store: Store | None = None,
        key: MasterKey | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.operator = settings.operator
        self._store = store
        self._key = key
        self._clients: dict[str, Any] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings.db)
        return self._store

    @property
    def has_store(self) -> bool:
        return self._store is not None or self.settings.db.exists()

    @cached_property
    def key(self) -> MasterKey:
        """The master key, checked against the store's fingerprint."""
        key = self._key or load_key(self.settings.master_key, self.settings.key_file)
        expected = self.store.get_meta("key_fingerprint")
        if expected is not None and expected != key.fingerprint:
            raise KeyError_(
                f"wrong master key for the store at {self.settings.db}: the key's fingerprint "
                f"is {key.fingerprint}, the store expects {expected}. Set BANKWX_MASTER_KEY or "
                "BANKWX_KEY_FILE to the key this store was created with."
            )
        return key

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if close:
                close()
        self._clients.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

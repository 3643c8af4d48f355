"""The bank back-end's configuration and check, as the commands show them (never the key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackendConfig:
    """The store's back-end: where it is and how bankwx proves itself to it."""

    url: str
    has_api_key: bool
    client_cert: str | None
    client_key: str | None
    ca_file: str | None  # None: the system's CA certificates
    timeout_ms: int
    updated_at: str
    updated_by: str
    sms_url: str | None = None  # the SMS gateway's base URL; None: the back-end's
    has_sms_api_key: bool = False  # False: the gateway takes the back-end's key

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "api_key": "set" if self.has_api_key else None,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "ca_file": self.ca_file,
            "timeout_ms": self.timeout_ms,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "sms_url": self.sms_url,
            "sms_api_key": "set" if self.has_sms_api_key else None,
        }


@dataclass(frozen=True)
class BackendCheck:
    """``backend check``: the back-end answered its health path."""

    url: str
    status: str
    version: str
    ms: int

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "version": self.version, "ms": self.ms}

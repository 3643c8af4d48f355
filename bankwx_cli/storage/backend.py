"""The store's back-end configuration (table ``backend``, one row)."""

from __future__ import annotations

from bankwx_cli.models.backend import BackendConfig
from bankwx_cli.storage.db import Database


class BackendSettings:
    """The one back-end of the store, with its API key sealed (the domain seals and opens)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self) -> tuple[BackendConfig, bytes | None] | None:
        """The configuration and the sealed API key, or None when none is set."""
        row = self.db.one(
            "SELECT url, api_key_enc, client_cert, client_key, ca_file, timeout_ms, "
            "updated_at, updated_by, sms_url, sms_api_key_enc IS NOT NULL AS has_sms_key "
            "FROM backend WHERE id = 1"
        )
        if row is None:
            return None
        sealed = None if row["api_key_enc"] is None else bytes(row["api_key_enc"])
        config = BackendConfig(
            url=str(row["url"]),
            has_api_key=sealed is not None,
            client_cert=row["client_cert"],
            client_key=row["client_key"],
            ca_file=row["ca_file"],
            timeout_ms=int(row["timeout_ms"]),
            updated_at=str(row["updated_at"]),
            updated_by=str(row["updated_by"]),
            sms_url=row["sms_url"],
            has_sms_api_key=bool(row["has_sms_key"]),
        )
        return config, sealed

    def sms_key(self) -> bytes | None:
        """The SMS gateway's sealed API key, or None (the back-end's key serves)."""
        value = self.db.scalar("SELECT sms_api_key_enc FROM backend WHERE id = 1")
        return None if value is None else bytes(value)

    def put(self, config: BackendConfig, api_key_enc: bytes | None) -> None:
        """Replace the configuration (the SMS gateway's stays: ``put_sms``). Call inside a
        transaction."""
        self.db.execute(
            "INSERT INTO backend (id, url, api_key_enc, client_cert, client_key, ca_file, "
            "timeout_ms, updated_at, updated_by) "
            "VALUES (1, :url, :key, :cert, :ckey, :ca, :timeout, :at, :by) "
            "ON CONFLICT (id) DO UPDATE SET url = excluded.url, "
            "api_key_enc = excluded.api_key_enc, client_cert = excluded.client_cert, "
            "client_key = excluded.client_key, ca_file = excluded.ca_file, "
            "timeout_ms = excluded.timeout_ms, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            {
                "url": config.url,
                "key": api_key_enc,
                "cert": config.client_cert,
                "ckey": config.client_key,
                "ca": config.ca_file,
                "timeout": config.timeout_ms,
                "at": config.updated_at,
                "by": config.updated_by,
            },
        )

    def put_sms(self, sms_url: str | None, sms_api_key_enc: bytes | None) -> None:
        """Set the SMS gateway's URL and sealed key (None: the back-end's). Call inside the
        transaction that ``put`` the configuration."""
        self.db.execute(
            "UPDATE backend SET sms_url = :url, sms_api_key_enc = :key WHERE id = 1",
            {"url": sms_url, "key": sms_api_key_enc},
        )

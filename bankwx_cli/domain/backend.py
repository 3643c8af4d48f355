"""The bank's back-end: its configuration (one per store, the API key sealed), its check, and
the adapter the context builds from it."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bankwx_cli.clock import iso
from bankwx_cli.domain import audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import NotFoundError, ValidationError
from bankwx_cli.models.backend import BackendCheck, BackendConfig

if TYPE_CHECKING:
    from bankwx_cli.backend.client import BackendClient
    from bankwx_cli.context import AppContext

KEY_PURPOSE = "backend:api_key"
SMS_KEY_PURPOSE = "backend:sms_api_key"
_API_KEY = re.compile(r"[\x21-\x7e]{1,512}")  # printable ASCII, no spaces: an HTTP header value
NOT_SET = "no back-end is configured. Set one with bankwx backend set --url URL --api-key -."


def validate_api_key(value: str) -> str:
    """The key without surrounding whitespace (a newline from a pipe); ValidationError when it
    is not 8 to 512 printable ASCII characters without spaces."""
    key = value.strip()
    if not _API_KEY.fullmatch(key):
        raise ValidationError(
            "the back-end API key read from standard input is invalid: use 1 to 512 printable "
            "ASCII characters without spaces (pipe it in: ... | bankwx backend set --url URL "
            "--api-key -)."
        )
    return key


def _readable_file(path: Path, option: str) -> str:
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise ValidationError(f"{option} '{path}' is not a file. Give the PEM file's path.")
    try:
        with resolved.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise ValidationError(
            f"cannot read {option} '{path}' ({exc.strerror or exc}). Give a file this user "
            "can read."
        ) from None
    if b"-----BEGIN " not in head:
        raise ValidationError(f"{option} '{path}' is not a PEM file (no -----BEGIN line).")
    return str(resolved)


def _private_key_file(path: Path) -> str:
    resolved = _readable_file(path, "--client-key")
    mode = os.stat(resolved).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValidationError(
            f"--client-key '{path}' can be read by others (mode {stat.S_IMODE(mode):o}). "
            f"Run: chmod 600 {resolved}"
        )
    return resolved


def set_(
    app: AppContext,
    url: str | None,
    *,
    api_key: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    ca_file: Path | None = None,
    timeout_ms: int | None = None,
    sms_url: str | None = None,
    sms_api_key: str | None = None,
) -> BackendConfig:
    """Set the store's back-end (one per store), audited. What is not given keeps its stored
    value (the URL, the API key, the certificate, the CA file, the timeout, the SMS gateway's
    URL and key); a new store's timeout is 3000 ms. The SMS gateway (``sms_url``, an empty
    one: the back-end's again) takes the back-end's URL and key unless given its own.

    Raises PermissionDenied without ``backend.manage``; BackendConfigError for a URL that is
    plain HTTP to another host or a timeout out of range; ValidationError for a bad key or
    certificate files, when neither an API key nor a client certificate would be set, or
    without a URL when none is stored.
    """
    from bankwx_cli.backend.client import DEFAULT_TIMEOUT_MS, check_timeout_ms, check_url

    require(app, "backend.manage")
    if url is None:
        stored = app.store.backend.get()
        if stored is None:
            raise ValidationError("no back-end is set yet: give its --url.")
        url = stored[0].url
    base = check_url(url)
    gateway = check_url(sms_url) if sms_url else sms_url  # "": back to the back-end's
    if timeout_ms is not None:
        check_timeout_ms(timeout_ms)
    if (client_cert is None) != (client_key is None):
        raise ValidationError(
            "--client-cert and --client-key go together: give both (PEM files) or neither."
        )
    cert = _readable_file(client_cert, "--client-cert") if client_cert is not None else None
    cert_key = _private_key_file(client_key) if client_key is not None else None
    trusted = _readable_file(ca_file, "--ca-file") if ca_file is not None else None
    sealed_new = None
    if api_key is not None:
        sealed_new = app.key.seal(validate_api_key(api_key), KEY_PURPOSE)
    sms_sealed_new = None
    if sms_api_key is not None:
        sms_sealed_new = app.key.seal(validate_api_key(sms_api_key), SMS_KEY_PURPOSE)
    with app.store.transaction():
        existing = app.store.backend.get()
        old, old_sealed = existing if existing is not None else (None, None)
        sealed = sealed_new if sealed_new is not None else old_sealed
        sms_sealed = sms_sealed_new if sms_sealed_new is not None else app.store.backend.sms_key()
        if gateway is None and old is not None:
            gateway = old.sms_url
        elif gateway == "" and sms_sealed_new is None:
            sms_sealed = None  # back to the back-end's URL, and its key
        if cert is None and old is not None:
            cert, cert_key = old.client_cert, old.client_key
        if sealed is None and cert is None:
            raise ValidationError(
                "the back-end needs an API key or a client certificate: add --api-key - (the "
                "key on standard input) or --client-cert FILE --client-key FILE."
            )
        if trusted is None and old is not None:
            trusted = old.ca_file
        timeout = timeout_ms or (old.timeout_ms if old is not None else DEFAULT_TIMEOUT_MS)
        config = BackendConfig(
            url=base,
            has_api_key=sealed is not None,
            client_cert=cert,
            client_key=cert_key,
            ca_file=trusted,
            timeout_ms=timeout,
            updated_at=iso(app.clock.now()),
            updated_by=app.operator,
            sms_url=gateway or None,
            has_sms_api_key=sms_sealed is not None,
        )
        app.store.backend.put(config, sealed)
        app.store.backend.put_sms(config.sms_url, sms_sealed)
        params = {
            "url": base,
            "api_key": "new" if sealed_new is not None else None,
            "client_cert": cert,
            "ca_file": trusted,
            "timeout_ms": timeout,
            "sms_url": gateway or None,
            "sms_api_key": "new" if sms_sealed_new is not None else None,
        }
        audit.record(app, "backend.set", base, params)
    app.forget_backend()
    return config


def show(app: AppContext) -> BackendConfig:
    """The store's back-end (never its key). Raises PermissionDenied without ``backend.read``,
    NotFoundError when none is set."""
    require(app, "backend.read")
    found = app.store.backend.get()
    if found is None:
        raise NotFoundError(NOT_SET)
    return found[0]


def check(app: AppContext) -> BackendCheck:
    """Call the back-end's health path. Raises PermissionDenied without ``backend.read``,
    NotFoundError when none is set, BackendError (exit 1) saying why when the call fails or
    the back-end says it is not ok."""
    from bankwx_cli.backend.errors import BackendError, BackendRefusedError

    config = show(app)
    started = time.monotonic()
    try:
        health = app.backend.health()
    except BackendRefusedError as exc:
        hint = ""
        if exc.status in (401, 403):
            hint = " Check the API key or certificate: bankwx backend set --url URL --api-key -."
        raise BackendError(f"backend check failed: {exc}{hint}") from None
    except BackendError as exc:
        raise BackendError(f"backend check failed: {exc}") from None
    ms = round((time.monotonic() - started) * 1000)
    if health.status != "ok":
        raise BackendError(
            f"backend check failed: the back-end at {config.url} says its status is "
            f"'{health.status}', not 'ok'."
        )
    return BackendCheck(config.url, health.status, health.version, ms)


def build_adapter(app: AppContext, sms: bool = False) -> BackendClient:
    """The adapter over the store's back-end, its API key opened (``AppContext.backend``);
    with ``sms``, over its SMS gateway (``AppContext.sms_gateway``: the gateway's URL and key,
    each the back-end's when not set). Raises NotFoundError when none is set,
    BackendConfigError when the stored URL is refused."""
    from bankwx_cli.backend.client import BackendClient

    found = app.store.backend.get()
    if found is None:
        raise NotFoundError(NOT_SET)
    config, sealed = found
    api_key = app.key.open(sealed, KEY_PURPOSE) if sealed is not None else None
    url = config.url
    if sms:
        url = config.sms_url or config.url
        sms_sealed = app.store.backend.sms_key()
        if sms_sealed is not None:
            api_key = app.key.open(sms_sealed, SMS_KEY_PURPOSE)
    cert = None
    if config.client_cert is not None and config.client_key is not None:
        cert = (config.client_cert, config.client_key)
    return BackendClient(
        url,
        api_key=api_key,
        client_cert=cert,
        ca_file=config.ca_file,
        timeout_ms=config.timeout_ms,
    )

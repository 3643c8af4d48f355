"""Serve the sandbox under uvicorn: in the foreground (``bankwx backend sandbox``) or in a
thread of this process (``SandboxThread``: tests and the demo)."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from bankwx_cli.errors import BankwxError, ValidationError
from bankwx_cli.sandbox.app import Faults, SandboxApp, SandboxState
from bankwx_cli.sandbox.data import Bank
from bankwx_cli.sandbox.messaging import AlertFeed, intake_url

DEFAULT_KEY = "sandbox"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_state(
    data: Path | None,
    seed: int = 0,
    delay_ms: int = 0,
    fail_rate: float = 0.0,
    key: str = DEFAULT_KEY,
    alerts: AlertFeed | None = None,
) -> SandboxState:
    """A sandbox over the SQLite file ``data`` (kept: seeded only when empty); ``alerts``:
    where ``POST /sandbox/transactions`` pushes events. Raises ValidationError for a bad value
    or a file that is not the sandbox's."""
    if delay_ms < 0:
        raise ValidationError(f"--delay-ms must be 0 or more, not {delay_ms}.")
    if not 0 <= fail_rate <= 1:
        raise ValidationError(f"--fail-rate must be between 0 and 1, not {fail_rate:g}.")
    if not key:
        raise ValidationError("the sandbox key (BANKWX_SANDBOX_KEY) must not be empty.")
    if data is None:
        raise ValidationError("the sandbox needs a data file.")
    if data.is_dir():
        raise ValidationError(f"--data '{data}' is a directory: give a file name.")
    try:
        bank = Bank(data, seed)
    except Exception as exc:  # sqlite3 errors: a file that is not a database, or not ours
        raise ValidationError(
            f"--data '{data}' cannot be used as the sandbox's database ({exc}). Give a new "
            "file name."
        ) from None
    state = SandboxState(bank, key, initial=Faults(delay_ms, fail_rate, False))
    if alerts is not None and alerts.url is not None:
        try:
            state.alerts = AlertFeed(intake_url(alerts.url), alerts.key)
        except ValueError as exc:
            raise ValidationError(f"{exc}.") from None
    return state


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port). Raises BankwxError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise BankwxError(f"cannot listen on {host}:{port}: {exc}.") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise BankwxError(
            f"cannot listen on {host}:{port}: {exc.strerror}. Choose another --port "
            "(0 picks a free one)."
        ) from None
    return sock


def _config(state: SandboxState) -> uvicorn.Config:
    return uvicorn.Config(
        SandboxApp(state),
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=2,
    )


def run(
    host: str = "127.0.0.1",
    port: int = 8090,
    data: Path | None = None,
    seed: int = 0,
    delay_ms: int = 0,
    fail_rate: float = 0.0,
    key: str = DEFAULT_KEY,
    alerts: AlertFeed | None = None,
) -> None:
    """Serve until interrupted. The first line on standard output is
    ``Listening on http://HOST:PORT`` (the real port when ``port`` is 0). Without ``data`` the
    bank lives in a temporary file, removed at the end.

    Raises ValidationError for bad values, BankwxError when the port cannot be bound.
    """
    if not is_loopback(host):
        raise ValidationError(
            f"--host '{host}' is not a loopback address: the sandbox serves this machine only "
            "(its key is known); use 127.0.0.1 or ::1."
        )
    folder = None
    if data is None:
        folder = Path(tempfile.mkdtemp(prefix="bankwx-sandbox-"))
        data = folder / "sandbox.db"
    try:
        state = build_state(data, seed, delay_ms, fail_rate, key, alerts)
        sock = bind_socket(host, port)
        shown = f"[{host}]" if ":" in host else host
        server = uvicorn.Server(_config(state))
        sys.stdout.write(f"Listening on http://{shown}:{sock.getsockname()[1]}\n")
        sys.stdout.flush()
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # uvicorn re-raises Ctrl-C after its graceful shutdown: a normal stop
        finally:
            sock.close()
            state.bank.close()
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class SandboxThread:
    """The sandbox on a free loopback port in a background thread, for tests and the demo.

    ``with SandboxThread(tmp_path / "bank.db") as sandbox: sandbox.url, sandbox.state``
    """

    def __init__(
        self,
        data: Path,
        seed: int = 0,
        delay_ms: int = 0,
        fail_rate: float = 0.0,
        key: str = DEFAULT_KEY,
        host: str = "127.0.0.1",
        alerts: AlertFeed | None = None,
    ) -> None:
        self.state = build_state(data, seed, delay_ms, fail_rate, key, alerts)
        self.sock = bind_socket(host, 0)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        config = _config(self.state)
        config.lifespan = "off"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> SandboxThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise BankwxError("the sandbox did not start within 10 s.")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
        self.state.bank.close()

"""Run the simulator in the foreground under uvicorn (``bankwx sim api``)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from bankwx_cli.errors import BankwxError, ValidationError
from bankwx_cli.sim.app import create_app
from bankwx_cli.sim.state import DEFAULT_CALLBACK_TIMEOUT, Account, SimState, account_from_dict


def load_accounts(path: str | Path) -> list[Account]:
    """Account records from a YAML or JSON file: a list, or ``{"accounts": [...]}``.

    Raises ValidationError naming the file and the problem.
    """
    try:
        loaded: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read accounts file '{path}': {exc.strerror}.") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"accounts file '{path}' is not YAML or JSON: {exc}") from exc
    if isinstance(loaded, dict) and "accounts" in loaded:
        loaded = loaded["accounts"]
    if not isinstance(loaded, list) or not all(isinstance(item, dict) for item in loaded):
        raise ValidationError(f"accounts file '{path}' must hold a list of account records.")
    accounts: list[Account] = []
    for number, record in enumerate(loaded, start=1):
        try:
            accounts.append(account_from_dict(record))
        except ValueError as exc:
            raise ValidationError(f"accounts file '{path}', record {number}: {exc}.") from exc
    return accounts


def build_state(
    followers: int = 100,
    seed: int = 0,
    fail_rate: float = 0.0,
    latency_ms: int = 0,
    accounts_file: str | Path | None = None,
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
) -> SimState:
    """A fresh simulator state with the accounts of ``accounts_file`` registered.

    Raises ValidationError for a bad value or file.
    """
    if followers < 0:
        raise ValidationError(f"followers must be 0 or more, not {followers}.")
    if not 0 <= fail_rate <= 1:
        raise ValidationError(f"fail rate must be between 0 and 1, not {fail_rate}.")
    if latency_ms < 0:
        raise ValidationError(f"latency must be 0 ms or more, not {latency_ms}.")
    if callback_timeout <= 0:
        raise ValidationError(f"callback timeout must be positive, not {callback_timeout}.")
    state = SimState(
        followers=followers,
        seed=seed,
        fail_rate=fail_rate,
        latency_ms=latency_ms,
        callback_timeout=callback_timeout,
    )
    if accounts_file is not None:
        for account in load_accounts(accounts_file):
            state.register_account(account)
    return state


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free port). Raises BankwxError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise BankwxError(f"cannot listen on {host}:{port}: {exc}.") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise BankwxError(f"cannot listen on {host}:{port}: {exc.strerror}.") from exc
    return sock


def run(
    host: str = "127.0.0.1",
    port: int = 8081,
    followers: int = 100,
    seed: int = 0,
    fail_rate: float = 0.0,
    latency_ms: int = 0,
    accounts_file: str | Path | None = None,
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
) -> None:
    """Serve the simulator until interrupted (returns after Ctrl-C). The first line on standard
    output is ``Listening on http://HOST:PORT`` (the real port when ``port`` is 0).

    Raises ValidationError for bad values and BankwxError when the port cannot be bound.
    """
    state = build_state(followers, seed, fail_rate, latency_ms, accounts_file, callback_timeout)
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    sys.stdout.write(f"Listening on http://{shown_host}:{actual_port}\n")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown: a normal stop here
    finally:
        sock.close()

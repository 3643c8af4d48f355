"""`bankwx serve`: the callback receiver on uvicorn."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
from typing import Annotated, Any

import typer
import uvicorn

from bankwx_cli import server
from bankwx_cli.commands._cli import get_cli
from bankwx_cli.errors import BankwxError, ValidationError


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BankwxError(f"cannot listen on {host}:{port}: {exc.strerror}.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    deadline: Annotated[
        float,
        typer.Option("--deadline", help="Seconds a handler may take before 'success' is sent."),
    ] = 4.0,
    replay_window: Annotated[
        float,
        typer.Option("--replay-window", help="Accepted timestamp skew, seconds (60 at least)."),
    ] = 300.0,
    max_body: Annotated[
        int, typer.Option("--max-body", help="Largest callback body accepted, bytes.")
    ] = 64 * 1024,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-callback log line.")] = False,
) -> None:
    """Run the callback receiver that WeChat calls for every message and event.

    One process serves every account in the store at /wx/ACCOUNT. SIGTERM drains in-flight
    requests before exit. The first line on standard output is `Listening on http://HOST:PORT`.

    Examples:

      bankwx serve --port 8080

      bankwx serve --host 0.0.0.0 --port 8080 --workers 4 --deadline 4
    """
    cli = get_cli(ctx)
    if not 0 < deadline < 5:
        raise ValidationError(f"--deadline {deadline} is invalid: WeChat waits 5 s; use 0 to 5.")
    if replay_window < 60:
        raise ValidationError("--replay-window must be 60 seconds at least (WeChat retries).")
    if workers < 1:
        raise ValidationError("--workers must be 1 or more.")
    if max_body < 1024:
        raise ValidationError("--max-body must be 1024 bytes at least.")
    app = cli.app
    app.store  # noqa: B018 - refuse a missing store before listening
    app.key  # noqa: B018 - and a wrong key
    if not quiet:
        logging.getLogger("bankwx_cli").setLevel(logging.INFO)
    options = server.ServeOptions(deadline=deadline, replay_window=replay_window, max_body=max_body)
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"Listening on http://{shown}:{sock.getsockname()[1]}\n")
    sys.stdout.flush()
    common: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": int(deadline) + 2,
        "http": "httptools",
        "loop": "uvloop",
        # The receiver reads no client address and no scheme: X-Forwarded-* parsing (on by
        # default for 127.0.0.1) is a middleware layer every callback would pay for.
        "proxy_headers": False,
        "server_header": False,  # no "server: uvicorn" for scanners
    }
    try:
        if workers == 1:
            config = uvicorn.Config(server.build(app, options), **common)
            uvicorn.Server(config).run(sockets=[sock])
            return
        settings = cli.settings
        env = {
            "BANKWX_DB": str(settings.db.resolve()),
            "BANKWX_KEY_FILE": str(settings.key_file),
            "BANKWX_OPERATOR": settings.operator,
            "BANKWX_RETRY_BUDGET_S": str(settings.retry_budget_s),
            "BANKWX_SERVE_OPTIONS": json.dumps(options.__dict__),
            "BANKWX_TEST_ACTIONS": "1" if settings.test_actions else "",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bankwx-metrics-"),
        }
        if settings.master_key:
            env["BANKWX_MASTER_KEY"] = settings.master_key
        if settings.api_base:
            env["BANKWX_API_BASE"] = settings.api_base
        os.environ.update(env)
        config = uvicorn.Config(
            "bankwx_cli.server:create_app", factory=True, workers=workers, **common
        )
        uvicorn.supervisors.Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()

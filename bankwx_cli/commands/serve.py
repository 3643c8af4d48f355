"""`bankwx serve`: the callback receiver on uvicorn."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from typing import Annotated, Any

import typer

from bankwx_cli import settings as settings_
from bankwx_cli.commands._cli import LOG_FORMAT, QUIET_LOGGERS, get_cli
from bankwx_cli.errors import BankwxError, ValidationError
from bankwx_cli.settings import Settings


def log_config(settings: Settings, quiet: bool) -> dict[str, Any]:
    """Logging for the receiver and each of its workers (uvicorn applies it in every process):
    --debug, -v and --quiet hold in a worker as in a single process."""
    root = "DEBUG" if settings.debug else "INFO" if settings.verbose else "WARNING"
    own = "DEBUG" if settings.debug else "WARNING" if quiet else "INFO"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"bankwx": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "bankwx",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": root},
        "loggers": {
            "bankwx_cli": {"level": own},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }


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
    import uvicorn
    import uvicorn.supervisors

    from bankwx_cli import server

    app = cli.app
    app.store  # noqa: B018 - refuse a missing store before listening
    app.key  # noqa: B018 - and a wrong key
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
        "log_config": log_config(cli.settings, quiet),
    }
    try:
        if workers == 1:
            config = uvicorn.Config(server.build(app, options), **common)
            uvicorn.Server(config).run(sockets=[sock])
            return
        # every global option, as its BANKWX_* variable, for the workers' from_environment
        env = settings_.environment(cli.settings.with_(db=cli.settings.db.resolve()))
        env[settings_.SERVE_OPTIONS_VAR] = json.dumps(options.__dict__)
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bankwx-metrics-")
        os.environ.update(env)
        config = uvicorn.Config(
            "bankwx_cli.server:create_app", factory=True, workers=workers, **common
        )
        uvicorn.supervisors.Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()

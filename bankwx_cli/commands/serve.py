"""`bankwx serve`: the callback receiver on uvicorn."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import tempfile
from typing import Annotated, Any

import typer

from bankwx_cli import __version__, logs
from bankwx_cli import settings as settings_
from bankwx_cli.commands._cli import get_cli
from bankwx_cli.errors import BankwxError
from bankwx_cli.settings import LogFormat

log = logging.getLogger(__name__)

PORT_RANGE = {"min": 0, "max": 65535}


def _bind(host: str, port: int, option: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise BankwxError(f"cannot listen on {host}:{port} ({option}): {exc.strerror}.") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise BankwxError(f"cannot listen on {host}:{port} ({option}): {reason}.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{sock.getsockname()[1]}"


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port; 0 picks a free one.", **PORT_RANGE)
    ] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.", min=1)] = 1,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline",
            help="Seconds a handler may take before 'success' is sent (above 0, below 5).",
            min=0.0,
            max=5.0,
        ),
    ] = 4.0,
    replay_window: Annotated[
        float,
        typer.Option(
            "--replay-window", help="Accepted timestamp skew, seconds (60 at least).", min=60.0
        ),
    ] = 300.0,
    max_body: Annotated[
        int,
        typer.Option("--max-body", help="Largest callback body accepted, bytes.", min=1024),
    ] = 64 * 1024,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-callback log line.")] = False,
    send_threads: Annotated[
        int,
        typer.Option(
            "--send-threads",
            help="Threads each process sends the outbox with (WeChat's answers are waited for "
            "in them): more for many alerts or agent replies a second.",
            min=1,
            max=64,
        ),
    ] = 4,
    admin_port: Annotated[
        int | None,
        typer.Option(
            "--admin-port",
            help="Serve /metrics, /healthz and /readyz on this port too (0 picks a free one); "
            "/metrics then leaves the public port.",
            **PORT_RANGE,
        ),
    ] = None,
    admin_host: Annotated[
        str, typer.Option("--admin-host", help="Address of the admin listener.")
    ] = "127.0.0.1",
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="Log lines on standard error: text, or one JSON object a line (default: the "
            "global --log-format, BANKWX_LOG_FORMAT, else text).",
        ),
    ] = None,
) -> None:
    """Run the callback receiver that WeChat calls for every message and event.

    One process serves every account in the store at /wx/ACCOUNT, with /healthz (liveness),
    /readyz (the store takes writes, every account's access token is fresh or can be fetched)
    and /metrics. SIGTERM drains in-flight requests before exit. The first line on standard
    output is `Listening on http://HOST:PORT`; with --admin-port, the second is
    `Admin on http://HOST:PORT`. Log lines (one per callback, one at start and at stop of each
    worker) go to standard error.

    Examples:

      bankwx serve --port 8080

      bankwx serve --host 0.0.0.0 --port 8080 --workers 4 --admin-port 9090 --log-format json
    """
    cli = get_cli(ctx)
    if deadline in (0, 5):
        raise typer.BadParameter(
            f"{deadline:g} is invalid: WeChat waits 5 s; use more than 0 and less than 5.",
            param_hint="'--deadline'",
        )
    if admin_port is not None and admin_port == port and port != 0:
        raise typer.BadParameter(
            f"{admin_port} is the public port: use another one (or 0 for a free one).",
            param_hint="'--admin-port'",
        )
    settings = cli.settings
    if log_format is not None:
        settings = settings.with_(log_format=log_format.value)
    logs.setup(settings.verbose, settings.debug, settings.log_format, worker=True,
               own_level=logging.INFO)  # fmt: skip
    import uvicorn
    import uvicorn.supervisors

    from bankwx_cli import server
    from bankwx_cli.http1 import Http

    app = cli.app
    app.store  # noqa: B018 - refuse a missing store before listening
    app.key  # noqa: B018 - and a wrong key
    from bankwx_cli.domain import stores

    if (warning := stores.identity_warning(app)) is not None:
        log.warning("%s", warning)  # a log line: --log-format json keeps every line JSON
    sock = _bind(host, port, "--port")
    admin = None if admin_port is None else _bind(admin_host, admin_port, "--admin-port")
    sockets = [sock] if admin is None else [sock, admin]
    options = server.ServeOptions(
        deadline=deadline,
        replay_window=replay_window,
        max_body=max_body,
        quiet=quiet,
        send_threads=send_threads,
        admin_port=None if admin is None else admin.getsockname()[1],
    )
    url = _url(host, sock)
    sys.stdout.write(f"Listening on {url}\n")
    if admin is not None:
        sys.stdout.write(f"Admin on {_url(admin_host, admin)}\n")
    sys.stdout.flush()
    log.info(
        "serve started version=%s url=%s admin=%s workers=%d db=%s",
        __version__, url, None if admin is None else _url(admin_host, admin), workers,
        settings.db,
    )  # fmt: skip
    common: dict[str, Any] = {
        "log_level": "warning",
        "log_config": None,  # logs.setup above (and in each worker) is the one setup
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": int(deadline) + 2,
        "http": Http,  # uvicorn's httptools protocol, a response in one write
        "loop": "uvloop",
        # The receiver reads no client address and no scheme: X-Forwarded-* parsing (on by
        # default for 127.0.0.1) is a middleware layer every callback would pay for.
        "proxy_headers": False,
        "server_header": False,  # no "server: uvicorn" for scanners
    }
    try:
        if workers == 1:
            # uvicorn raises SIGTERM again once it has drained: a no-op here lets this process
            # end normally, after its stop line, as the supervisor of --workers N does
            signal.signal(signal.SIGTERM, lambda signum, frame: None)
            config = uvicorn.Config(server.build(app, options), **common)
            uvicorn.Server(config).run(sockets=sockets)
            return
        # every global option, as its BANKWX_* variable, for the workers' from_environment
        env = settings_.environment(settings.with_(db=settings.db.resolve()))
        env[settings_.SERVE_OPTIONS_VAR] = json.dumps(options.__dict__)
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bankwx-metrics-")
        os.environ.update(env)
        config = uvicorn.Config(
            "bankwx_cli.server:create_app", factory=True, workers=workers, **common
        )
        uvicorn.supervisors.Multiprocess(config, sockets=sockets).run()
    finally:
        for opened in sockets:
            opened.close()
        log.info("serve stopped url=%s", url)

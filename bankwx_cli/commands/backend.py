"""`bankwx backend ...`: the bank's back-end (set, show, check) and its sandbox."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bankwx_cli.commands._cli import FormatOption, get_cli
from bankwx_cli.domain import backend
from bankwx_cli.errors import ValidationError

app = typer.Typer(
    help="The bank's back-end: set, show, check; and a sandbox that plays it.",
    no_args_is_help=True,
)


@app.command(
    "set",
    epilog="Examples:\n\n"
    "  printf '%s' \"$BANK_API_KEY\" | bankwx backend set --url https://esb.bank.example/wx "
    "--api-key -\n\n"
    "  bankwx backend set --url https://esb.bank.example/wx --client-cert wx.pem "
    "--client-key wx.key --ca-file bank-ca.pem --timeout-ms 2000\n\n"
    "  printf '%s' \"$SMS_KEY\" | bankwx backend set --sms-url https://sms.bank.example "
    "--sms-api-key -",
)
def set_(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The back-end's base URL: https, or http to this machine only. Left out: the "
            "stored one stays.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="'-': read the API key from standard input (sent as Authorization: Bearer; "
            "kept sealed with the master key). Left out: the stored key stays.",
        ),
    ] = None,
    client_cert: Annotated[
        Path | None,
        typer.Option("--client-cert", help="Client certificate (PEM) for mutual TLS."),
    ] = None,
    client_key: Annotated[
        Path | None,
        typer.Option("--client-key", help="The client certificate's private key (PEM, 0600)."),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            help="CA certificates (PEM) to trust for the back-end's certificate instead of the "
            "system's (a bank's own CA).",
        ),
    ] = None,
    timeout_ms: Annotated[
        int | None,
        typer.Option(
            "--timeout-ms",
            min=100,
            max=10_000,
            help="Per-call timeout in milliseconds, 100 to 10000 (default 3000).",
        ),
    ] = None,
    sms_url: Annotated[
        str | None,
        typer.Option(
            "--sms-url",
            help="The SMS gateway's base URL (POST /v1/sms/send), for alerts' SMS fallback. "
            "Default: the back-end's URL; '' goes back to its URL and key.",
        ),
    ] = None,
    sms_api_key: Annotated[
        str | None,
        typer.Option(
            "--sms-api-key",
            help="'-': read the SMS gateway's API key from standard input. Default: the "
            "back-end's key.",
        ),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Set the store's back-end (one per store): its URL, API key, client certificate, timeout,
    and its SMS gateway.

    Options left out keep their stored values. The change is audited; the keys never are.
    """
    cli = get_cli(ctx)
    if api_key == "-" and sms_api_key == "-":
        raise ValidationError(
            "--api-key - and --sms-api-key - both read standard input: set one, then the other."
        )
    key = _read_key("--api-key", api_key, "Back-end API key")
    sms_key = _read_key("--sms-api-key", sms_api_key, "SMS gateway API key")
    config = backend.set_(
        cli.app,
        url,
        api_key=key,
        client_cert=client_cert,
        client_key=client_key,
        ca_file=ca_file,
        timeout_ms=timeout_ms,
        sms_url=sms_url,
        sms_api_key=sms_key,
    )
    cli.render_one(config, fmt, say=f"The back-end is now {config.url}.")


def _read_key(option: str, value: str | None, prompt: str) -> str | None:
    """The key an option reads from standard input ('-'), or None when not given."""
    if value is None:
        return None
    if value != "-":
        raise ValidationError(
            f"{option} takes '-' and reads the key from standard input: a key on the command "
            "line is visible to every user of this machine. Pipe it in: ... | bankwx backend "
            f"set {option} -"
        )
    if sys.stdin.isatty():
        return str(typer.prompt(prompt, hide_input=True, err=True))
    return sys.stdin.read()


@app.command(epilog="Examples:\n\n  bankwx backend show\n\n  bankwx backend show --format json")
def show(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Show the store's back-end: URL, whether a key is set, certificate, timeout (never the
    key)."""
    cli = get_cli(ctx)
    cli.render_one(backend.show(cli.app), fmt, title="Back-end")


@app.command(epilog="Examples:\n\n  bankwx backend check\n\n  bankwx backend check --format json")
def check(ctx: typer.Context, fmt: FormatOption = None) -> None:
    """Call the back-end's health path; exit 1, saying why, when it fails."""
    cli = get_cli(ctx)
    result = backend.check(cli.app)
    say = (
        f"The back-end at {result.url} answers: status {result.status}, version "
        f"{result.version or '-'}, {result.ms} ms."
    )
    cli.render_one(result, fmt, say=say)


@app.command(
    epilog="Examples:\n\n  bankwx backend sandbox --port 8090 --seed 7\n\n"
    "  bankwx backend sandbox --port 0 --data bank.db --delay-ms 200 --fail-rate 0.1"
)
def sandbox(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind: a loopback address only.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port; 0 picks a free one.", min=0, max=65535)
    ] = 8090,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="SQLite file to keep the bank in (default: a temporary one)."),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**31 - 1, help="Seed for the demo customers.")
    ] = 0,
    delay_ms: Annotated[
        int, typer.Option("--delay-ms", help="Added delay per back-end call, ms.", min=0)
    ] = 0,
    fail_rate: Annotated[
        float,
        typer.Option(
            "--fail-rate", help="Share of back-end calls answered 503 (0 to 1).", min=0.0, max=1.0
        ),
    ] = 0.0,
    key: Annotated[
        str,
        typer.Option(
            "--key",
            envvar="BANKWX_SANDBOX_KEY",
            help="The API key callers must send (Authorization: Bearer KEY).",
            show_default=False,
        ),
    ] = "sandbox",
    alerts_url: Annotated[
        str | None,
        typer.Option(
            "--alerts-url",
            help="Where POST /sandbox/transactions pushes alert events, as a core system "
            "would: bankwx serve's URL (its /api/v1/alerts) or the intake's full URL.",
        ),
    ] = None,
    alert_key: Annotated[
        str,
        typer.Option(
            "--alert-key",
            envvar="BANKWX_SANDBOX_ALERT_KEY",
            help="The alert source's key the pushes carry (bankwx alert source add).",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Run the sandbox back-end in the foreground until stopped: seeded demo customers.

    The first line on standard output is `Listening on http://HOST:PORT`. It listens on this
    machine only; its key is BANKWX_SANDBOX_KEY (default `sandbox`). `/sandbox/...` endpoints
    (customers, otp, sms, transactions, state, faults, clock, reset) serve tests and need no
    key. It is also the bank's SMS gateway (POST /v1/sms/send).
    """
    from bankwx_cli.sandbox import server
    from bankwx_cli.sandbox.messaging import AlertFeed

    server.run(
        host=host,
        port=port,
        data=data,
        seed=seed,
        delay_ms=delay_ms,
        fail_rate=fail_rate,
        key=key,
        alerts=AlertFeed(alerts_url, alert_key) if alerts_url else None,
    )

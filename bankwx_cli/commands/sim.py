"""`bankwx sim ...`: the local WeChat simulator (its API and its followers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bankwx_cli.commands._cli import AccountOption, Cli, FormatOption, get_cli
from bankwx_cli.domain import accounts
from bankwx_cli.errors import FAILED, ValidationError
from bankwx_cli.models.wechat import FollowerReply
from bankwx_cli.settings import DEFAULT_SIM, variable

if TYPE_CHECKING:  # imported by the commands that use them: start-up time
    from bankwx_cli.sim.driver import SimDriver

app = typer.Typer(
    help="The local WeChat simulator: run its API, register accounts, act as a follower.",
    no_args_is_help=True,
)

SimOption = Annotated[
    str | None,
    typer.Option(
        "--sim",
        envvar=variable("sim"),
        help="Simulator URL (loopback only; default BANKWX_SIM, else a loopback --api-base, "
        f"else {DEFAULT_SIM}).",
    ),
]
EVENTS = ("subscribe", "unsubscribe", "click", "view", "location", "scan", "location_select")


def _driver(cli: Cli, sim: str | None) -> SimDriver:
    """The simulator's client: at --sim (BANKWX_SIM), else at the API base when that is on this
    machine (the simulator serves WeChat's API there), else at the default address."""
    from bankwx_cli.sim.driver import SimDriver, is_local

    settings = cli.settings
    if sim:
        return SimDriver(sim, source="--sim/BANKWX_SIM")
    if settings.sim != DEFAULT_SIM:
        return SimDriver(settings.sim, source="--sim/BANKWX_SIM")
    if settings.api_base and is_local(settings.api_base):
        return SimDriver(settings.api_base, source="--api-base/BANKWX_API_BASE")
    return SimDriver(DEFAULT_SIM, source="the default")


@app.command(
    epilog="Examples:\n\n  bankwx sim api --port 8081 --followers 1000 --seed 7\n\n"
    "  bankwx sim api --port 0 --fail-rate 0.1"
)
def api(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind: a loopback address only.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port; 0 picks a free one.", min=0, max=65535)
    ] = 8081,
    followers: Annotated[
        int,
        typer.Option("--followers", help="Subscribed followers to create per account.", min=0),
    ] = 100,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**31 - 1, help="Seed for followers and faults.")
    ] = 0,
    fail_rate: Annotated[
        float,
        typer.Option(
            "--fail-rate", help="Share of API calls that fail (0 to 1).", min=0.0, max=1.0
        ),
    ] = 0.0,
    latency: Annotated[
        int, typer.Option("--latency", help="Added latency per call, ms.", min=0)
    ] = 0,
    accounts_file: Annotated[
        Path | None, typer.Option("--accounts", help="YAML/JSON list of accounts to register.")
    ] = None,
    callback_timeout: Annotated[
        float,
        typer.Option(
            "--callback-timeout", min=0.001, max=60.0, help="WeChat's wait for a callback, s."
        ),
    ] = 5.0,
) -> None:
    """Run the simulated WeChat API in the foreground until stopped.

    The first line on standard output is `Listening on http://HOST:PORT`. It listens on this
    machine only (a loopback address): it hands out tokens to anyone who asks.
    """
    from bankwx_cli.sim.driver import is_local

    if not is_local(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"):
        raise typer.BadParameter(
            f"'{host}' is not a loopback address: the simulator serves this machine only; "
            "use 127.0.0.1 (or ::1).",
            param_hint="'--host'",
        )
    if callback_timeout <= 0:
        raise typer.BadParameter(
            f"{callback_timeout:g} is invalid: use more than 0 seconds.",
            param_hint="'--callback-timeout'",
        )
    from bankwx_cli.sim import server as sim_server

    sim_server.run(
        host=host,
        port=port,
        followers=followers,
        seed=seed,
        fail_rate=fail_rate,
        latency_ms=latency,
        accounts_file=accounts_file,
        callback_timeout=callback_timeout,
    )


@app.command(
    epilog="Examples:\n\n  bankwx sim register main\n\n"
    "  bankwx sim register main --callback http://127.0.0.1:9000/wx/main"
)
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The store's account to register.")],
    callback: Annotated[
        str | None,
        typer.Option("--callback", help="Receiver URL (default http://127.0.0.1:8080/wx/NAME)."),
    ] = None,
    oauth_domain: Annotated[
        str | None,
        typer.Option(
            "--oauth-domain",
            help="Web authorisation domain: the host pages that authorise followers are on "
            "(default: the account's public URL's host).",
        ),
    ] = None,
    sim: SimOption = None,
) -> None:
    """Register a store account with the simulator, so it plays WeChat for it."""
    from bankwx_cli.domain import bank

    cli = get_cli(ctx)
    values = accounts.sim_registration(cli.app, name, callback)
    domain = bank.oauth_domain(accounts.get(cli.app, values.name), oauth_domain)
    with _driver(cli, sim) as driver:
        driver.register_account(**values.to_json(), oauth_domain=domain)
    where = f"; web authorisation for {domain}" if domain else ""
    cli.say(
        f"Registered '{name}' with the simulator; callbacks go to {values.callback_url}{where}."
    )


@app.command(
    "open",
    epilog="Examples:\n\n  bankwx sim open https://bank.example.com/bind/main\n\n"
    "  bankwx sim open http://127.0.0.1:8080/bind/main --openid oABC",
)
def open_(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The page to open in WeChat's browser.")],
    openid: Annotated[
        str | None, typer.Option("--openid", help="Follower (default: the first one).")
    ] = None,
    account: AccountOption = None,
    sim: SimOption = None,
) -> None:
    """Print the address that opens URL in a follower's simulated WeChat browser.

    Opening it (in any browser) makes that browser the follower's, then goes to URL: pages
    that ask WeChat to authorise the follower (the binding page) get their openid.
    """
    from urllib.parse import quote, urlsplit

    cli = get_cli(ctx)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"'{url}' is not an http:// or https:// address.")
    acct = accounts.show(cli.app, cli.with_account(account))
    with _driver(cli, sim) as driver:
        who = openid or driver.pick_openid(acct.appid)
        base = driver.base_url.rstrip("/")
    sys.stdout.write(
        f"{base}/sim/followers/{quote(who, safe='')}/browse?url={quote(url, safe='')}\n"
    )


def _render_reply(cli: Cli, reply: FollowerReply, fmt: Any) -> None:
    cli.for_json(reply.to_json(), fmt)
    content = reply.text() + "\n"
    if reply.status == "replied":
        cli.for_people(fmt, text=content)
    elif reply.status == "success":
        cli.for_people(fmt, say="(no reply: the receiver answered success)")
    else:
        failed = f"(failed after {reply.deliveries} deliveries: {reply.reason})"
        cli.for_people(fmt, say=failed, text=content)


@app.command(
    epilog="Examples:\n\n  bankwx sim send 余额 --account main\n\n"
    "  bankwx sim send --event click --key BALANCE --format json\n\n"
    "  bankwx sim send --event location --lat 31.23 --lng 121.47\n\n"
    "  bankwx sim send --location 31.2304,121.4737 --label 人民广场\n\n"
    "  bankwx sim send --event location_select --key NEAR --lat 31.23 --lng 121.47"
)
def send(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Text the follower sends.")] = None,
    event: Annotated[
        str | None, typer.Option("--event", help=f"Instead of text: {', '.join(EVENTS)}.")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="Event key (menu key, scene).")] = None,
    lat: Annotated[
        float | None, typer.Option("--lat", help="Latitude, degrees.", min=-90.0, max=90.0)
    ] = None,
    lng: Annotated[
        float | None, typer.Option("--lng", help="Longitude, degrees.", min=-180.0, max=180.0)
    ] = None,
    location: Annotated[
        str | None,
        typer.Option(
            "--location", help="Instead of text: a location message at LAT,LNG (degrees)."
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="The location's label (with --location).")
    ] = None,
    openid: Annotated[
        str | None, typer.Option("--openid", help="Follower (default: the first one).")
    ] = None,
    msgmenu_id: Annotated[
        str | None,
        typer.Option(
            "--msgmenu-id", help="The TEXT is a tap on a msgmenu option of this id (a rating)."
        ),
    ] = None,
    account: AccountOption = None,
    sim: SimOption = None,
    fmt: FormatOption = None,
) -> None:
    """Act as a follower: send text or an event through the simulator, print the reply.

    Exits 1 when the follower saw WeChat's failure notice.
    """
    cli = get_cli(ctx)
    if [text, event, location].count(None) != 2:
        raise ValidationError("give TEXT, --event or --location (one of them).")
    if event is not None and event not in EVENTS:
        raise ValidationError(f"--event '{event}' is invalid: use {', '.join(EVENTS)}.")
    if event in ("location", "location_select") and (lat is None or lng is None):
        raise ValidationError(f"--event {event} needs --lat and --lng.")
    if event == "location_select" and not key:
        raise ValidationError("--event location_select needs --key (the menu button's key).")
    if msgmenu_id is not None and text is None:
        raise ValidationError("--msgmenu-id goes with TEXT: the option's text the follower taps.")
    extra = {"bizmsgmenuid": msgmenu_id} if msgmenu_id is not None else {}
    msg_type = None
    if location is not None:
        lat, lng = _point(location)
        msg_type = "location"
    acct = accounts.show(cli.app, cli.with_account(account))
    with _driver(cli, sim) as driver:
        who = openid or driver.pick_openid(acct.appid)
        result = driver.send(acct.appid, who, text=text, event=event, key=key, lat=lat, lng=lng,
                             label=label, msg_type=msg_type, **extra)  # fmt: skip
    reply = FollowerReply.from_sim(result)
    _render_reply(cli, reply, fmt)
    if reply.status == "failed":
        raise typer.Exit(FAILED)


def _point(value: str) -> tuple[float, float]:
    """LAT,LNG in degrees; a usage error (exit 2) otherwise."""
    parts = value.split(",")
    try:
        lat, lng = (float(p) for p in parts) if len(parts) == 2 else (float("nan"),) * 2
    except ValueError:
        lat = lng = float("nan")
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise typer.BadParameter(
            f"'{value}' is not LAT,LNG in degrees (lat -90 to 90, lng -180 to 180), "
            "e.g. 31.2304,121.4737.",
            param_hint="'--location'",
        )
    return lat, lng


@app.command(epilog="Examples:\n\n  bankwx sim chat --account main")
def chat(
    ctx: typer.Context,
    openid: Annotated[str | None, typer.Option("--openid", help="Follower.")] = None,
    account: AccountOption = None,
    sim: SimOption = None,
) -> None:
    """Chat as a follower: type messages, see replies.

    Type /click KEY, /subscribe, /unsubscribe, /location LAT LNG, /location_select KEY LAT
    LNG, /scan KEY or /quit.
    """
    cli = get_cli(ctx)
    acct = accounts.show(cli.app, cli.with_account(account))
    with _driver(cli, sim) as driver:
        who = openid or driver.pick_openid(acct.appid)
        cli.say(f"Chatting with '{acct.name}' as {who}. /quit to leave.")
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            kwargs: dict[str, Any] = {"text": line}
            if line.startswith("/"):
                word, *rest = line[1:].split()
                if word not in EVENTS:
                    cli.say(f"unknown command /{word}")
                    continue
                kwargs = {"event": word}
                if word == "location" and len(rest) == 2:
                    kwargs.update(lat=float(rest[0]), lng=float(rest[1]))
                elif word == "location_select" and len(rest) == 3:
                    kwargs.update(key=rest[0], lat=float(rest[1]), lng=float(rest[2]))
                elif rest:
                    kwargs["key"] = rest[0]
            _render_reply(
                cli, FollowerReply.from_sim(driver.send(acct.appid, who, **kwargs)), "plain"
            )

"""Settings: flags, then BANKWX_* variables, then defaults; declared once, here.

``Settings`` is the one table of global options: each field says its flag(s), its variable, its
type, its default and its help (``_option``). Everything else is derived from it:

- the root command's options (``main.py`` builds them from ``OPTIONS``), where typer reads the
  variables (``envvar=``);
- ``from_environment``, for processes started without the command line (``bankwx serve``'s
  workers, tests);
- ``environment``, the variables that hand every setting to a worker.

Nothing else in the package reads ``os.environ`` for a ``BANKWX_*`` variable.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from bankwx_cli.errors import ValidationError

DEFAULT_DB = Path("bankwx.db")
DEFAULT_KEY_FILE = Path("~/.config/bankwx/master.key")
WECHAT_API_BASE = "https://api.weixin.qq.com"
DEFAULT_SIM = "http://127.0.0.1:8081"
FORMATS = ("table", "json", "csv", "markdown", "plain")
SERVE_OPTIONS_VAR = "BANKWX_SERVE_OPTIONS"  # bankwx serve's own options, for its workers

# What typer (click's BOOL) accepts for a boolean, case-insensitive.
TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    plain = "plain"


def login_user() -> str:
    """The login user's name, the default acting operator."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


@dataclass(frozen=True)
class Spec:
    """How one setting is given: flag(s), variable, help, and how the command line shows it."""

    flags: tuple[str, ...]
    env: str | None
    help: str
    hidden: bool = False
    count: bool = False  # -v -v: a counter
    choices: type[StrEnum] | None = None  # the command line's type for a str setting


def _spec(
    *flags: str,
    env: str | None,
    help: str,
    hidden: bool = False,
    count: bool = False,
    choices: type[StrEnum] | None = None,
) -> dict[str, Spec]:
    """A field's metadata: how the setting is given."""
    return {"spec": Spec(tuple(flags), env, help, hidden, count, choices)}


@dataclass(frozen=True)
class Settings:
    """The global options of one invocation (the one table: see the module's docstring)."""

    db: Path = field(
        default=DEFAULT_DB, metadata=_spec("--db", env="BANKWX_DB", help="The SQLite store.")
    )
    api_base: str | None = field(
        default=None,
        metadata=_spec(
            "--api-base",
            env="BANKWX_API_BASE",
            help="WeChat API base (scheme and host), e.g. a simulator's http://127.0.0.1:8081.",
        ),
    )
    account: str | None = field(
        default=None,
        metadata=_spec("--account", env="BANKWX_ACCOUNT", help="Default official account."),
    )
    fmt: str | None = field(
        default=None,
        metadata=_spec("--format", env="BANKWX_FORMAT", help="Output format.", choices=Fmt),
    )
    debug: bool = field(
        default=False, metadata=_spec("--debug", env="BANKWX_DEBUG", help="Show tracebacks.")
    )
    verbose: int = field(
        default=0,
        metadata=_spec("-v", "--verbose", env="BANKWX_VERBOSE", help="More logs.", count=True),
    )
    log_format: str = field(
        default="text",
        metadata=_spec(
            "--log-format",
            env="BANKWX_LOG_FORMAT",
            help="Log lines on standard error: text, or one JSON object a line.",
            choices=LogFormat,
        ),
    )
    operator: str = field(
        default_factory=login_user,
        metadata=_spec(
            "--operator",
            env="BANKWX_OPERATOR",
            help="Acting operator (default: the login user).",
            hidden=True,
        ),
    )
    master_key: str | None = field(
        default=None,
        metadata=_spec(
            "--master-key", env="BANKWX_MASTER_KEY", help="The master key.", hidden=True
        ),
    )
    key_file: Path = field(
        default=DEFAULT_KEY_FILE,
        metadata=_spec(
            "--key-file",
            env="BANKWX_KEY_FILE",
            help="The master key's file.",
            hidden=True,
        ),
    )
    sim: str = field(
        default=DEFAULT_SIM,
        metadata=_spec("--sim", env="BANKWX_SIM", help="The simulator's address.", hidden=True),
    )
    retry_budget_s: float = field(
        default=30.0,
        metadata=_spec(
            "--retry-budget",
            env="BANKWX_RETRY_BUDGET_S",
            help="Seconds a WeChat call may spend retrying.",
            hidden=True,
        ),
    )
    token_lease_s: float = field(
        default=15.0,
        metadata=_spec(
            "--token-lease",
            env="BANKWX_TOKEN_LEASE_S",
            help="Seconds one process may hold the access token's refresh lease.",
            hidden=True,
        ),
    )
    interactive: bool | None = field(
        default=None,
        metadata=_spec(
            "--interactive/--no-interactive",
            env="BANKWX_INTERACTIVE",
            help="Ask questions (default: when on a terminal).",
            hidden=True,
        ),
    )
    test_actions: bool = field(
        default=False,
        metadata=_spec(
            "--test-actions",
            env="BANKWX_TEST_ACTIONS",
            help="For tests: enable the test-only actions and settings.",
            hidden=True,
        ),
    )
    bench_no_rollups: bool = field(
        default=False,
        metadata=_spec(
            "--bench-no-rollups",
            env="BANKWX_BENCH_NO_ROLLUPS",
            help="For benchmarks only: the receiver counts nothing for reports (they miss it).",
            hidden=True,
        ),
    )
    test_clock_offset_s: float = field(
        default=0.0,
        metadata=_spec(
            "--test-clock-offset",
            env="BANKWX_TEST_CLOCK_OFFSET",
            help="For tests, with BANKWX_TEST_ACTIONS=1: shift bankwx's clock by S seconds.",
            hidden=True,
        ),
    )

    def __post_init__(self) -> None:
        if self.api_base is not None:
            check_url(self.api_base, "--api-base (BANKWX_API_BASE)", WECHAT_API_BASE)
        if self.test_clock_offset_s and not self.test_actions:
            raise ValidationError(
                "BANKWX_TEST_CLOCK_OFFSET (--test-clock-offset) is for tests only: "
                "set BANKWX_TEST_ACTIONS=1 too, or unset it."
            )

    @property
    def wechat_base(self) -> str:
        return (self.api_base or WECHAT_API_BASE).rstrip("/")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def check_url(url: str, source: str, example: str) -> str:
    """url, if it is an http(s) address with a host (and a valid port, if any).

    Raises ValidationError naming source (the option and its variable) and the fix.
    """
    from urllib.parse import urlsplit

    problem = ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it does not start with http:// or https://"
        elif not parts.hostname:
            problem = "it names no host"
        elif parts.query or parts.fragment or any(c.isspace() for c in url):
            problem = "it has a query, a fragment or spaces"
    if problem:
        raise ValidationError(
            f"{source} '{url}' is not a valid URL ({problem}): use http(s)://HOST[:PORT], "
            f"e.g. {example}."
        )
    return url


@dataclass(frozen=True)
class GlobalOption:
    """One row of the table: a Settings field and how it is given."""

    name: str
    type: Any  # the field's type, None removed: Path, str, bool, int, float
    optional: bool  # None is a value (unset)
    default: Any  # MISSING when a factory gives it
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flags[-1].split("/")[0]

    def parse(self, text: str, source: str) -> Any:
        """A value from a variable's text; ValidationError names source and what it accepts."""
        kind = self.type
        try:
            if kind is bool:
                return parse_bool(text)
            if kind is int:
                return int(text)
            if kind is float:
                return float(text)
            if kind is Path:
                return Path(text)
        except ValueError:
            accepts = "1/0, true/false, yes/no or on/off" if kind is bool else f"a {kind.__name__}"
            raise ValidationError(f"{source} '{text}' is invalid: use {accepts}.") from None
        if self.spec.choices is not None and text not in {c.value for c in self.spec.choices}:
            allowed = ", ".join(c.value for c in self.spec.choices)
            raise ValidationError(f"{source} '{text}' is invalid: use {allowed}.")
        return text

    def render(self, value: Any) -> str:
        """A value as a variable's text ('' for unset), the inverse of parse."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else "0"
        return str(value)


def _table() -> tuple[GlobalOption, ...]:
    hints = typing.get_type_hints(Settings)
    rows = []
    for f in fields(Settings):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        base = next((a for a in args if a is not type(None)), hint)
        rows.append(GlobalOption(f.name, base, bool(args), f.default, f.metadata["spec"]))
    return tuple(rows)


OPTIONS: tuple[GlobalOption, ...] = _table()


def variable(name: str) -> str:
    """The BANKWX_* variable of a setting (for options repeated after a subcommand)."""
    env = next(o.spec.env for o in OPTIONS if o.name == name)
    assert env is not None  # noqa: S101 - every option repeated below the root has one
    return env


def parse_bool(text: str) -> bool:
    """A boolean as typer reads one: 1/0, true/false, t/f, yes/no, y/n, on/off, any case."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def from_options(values: Mapping[str, Any]) -> Settings:
    """Settings from the root command's parsed options (typer already read the variables)."""
    chosen: dict[str, Any] = {}
    for option in OPTIONS:
        value = values.get(option.name)
        if isinstance(value, StrEnum):
            value = value.value
        if value is None or value == "":
            continue  # the default (or the factory's)
        chosen[option.name] = value
    return Settings(**chosen)


def from_environment(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from BANKWX_* variables, for processes started without the CLI (workers, tests).

    An empty variable counts as unset, as on the command line.
    """
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for option in OPTIONS:
        if option.spec.env is None:
            continue
        text = env.get(option.spec.env, "")
        if text != "":
            values[option.name] = option.parse(text, option.spec.env)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def environment(settings: Settings) -> dict[str, str]:
    """Every setting as its variable (unset ones as ''), for a worker's from_environment."""
    return {
        option.spec.env: option.render(getattr(settings, option.name))
        for option in OPTIONS
        if option.spec.env is not None
    }


def describe(settings: Settings) -> str:
    """The settings for a log line; the master key is never shown."""
    parts = []
    for option in OPTIONS:
        value = getattr(settings, option.name)
        if option.name == "master_key" and value is not None:
            value = "(set)"
        parts.append(f"{option.name}={value}")
    return " ".join(parts)


def serve_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``bankwx serve``'s own options as its parent handed them to a worker."""
    import json

    env = os.environ if environ is None else environ
    loaded = json.loads(env.get(SERVE_OPTIONS_VAR) or "{}")
    return dict(loaded) if isinstance(loaded, dict) else {}

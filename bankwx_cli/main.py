"""The root application: global options, the error boundary, and the command groups.

Start-up is part of the contract (cron and deployment scripts call bankwx often): the root
knows its commands by name and short help (``COMMANDS``) and imports a command's module only
when that command runs, or when its own help is asked for. ``bankwx --version`` therefore
imports typer and little else, and ``bankwx account list`` only what listing accounts needs.
A new command or group is one row of ``COMMANDS``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
import sys
from dataclasses import MISSING
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from bankwx_cli import __version__, settings
from bankwx_cli.commands._cli import Cli, complete_account, complete_operator, say_error
from bankwx_cli.errors import FAILED, INTERRUPTED, OK, BankwxError


class Entry(NamedTuple):
    """A command of the root: where it lives and its help's first paragraph."""

    module: str
    attribute: str  # a typer.Typer (a group) or a function (a command)
    help: str


_C = "bankwx_cli.commands."
# In the order `bankwx --help` shows them. tests/commands/test_main.py checks each help against
# the command's own.
COMMANDS: dict[str, Entry] = {
    "init": Entry(
        _C + "store",
        "init",
        "Create the store and the master key; the acting operator becomes an administrator.",
    ),
    "audit": Entry(
        _C + "store", "audit", "Show the audit log: who changed what, when, with what outcome."
    ),
    "backup": Entry(
        _C + "store",
        "backup",
        "Make an online, consistent copy of the store, safe while the receiver writes.",
    ),
    "check": Entry(
        _C + "store",
        "check",
        "Check the store: file integrity, master key fingerprint, audit chain, and that stored "
        "replies and outbox payloads are sealed with the master key.",
    ),
    "store": Entry(_C + "store", "store_app", "The store's own settings: identity."),
    "demo": Entry(
        _C + "demo",
        "demo",
        "Run a guided tour of bankwx on a throw-away store and the built-in simulator.",
    ),
    "serve": Entry(
        _C + "serve",
        "serve",
        "Run the callback receiver that WeChat calls for every message and event.",
    ),
    "account": Entry(
        _C + "account",
        "app",
        "Official accounts: add, list, show, update, remove, check credentials, settings.",
    ),
    "operator": Entry(_C + "operator", "app", "Operators (staff) and their roles."),
    "org": Entry(_C + "operator", "org_app", "Organisations: head office, branches."),
    "role": Entry(_C + "operator", "role_app", "Built-in roles and their permissions."),
    "sim": Entry(
        _C + "sim",
        "app",
        "The local WeChat simulator: run its API, register accounts, act as a follower.",
    ),
    "keyword": Entry(
        _C + "keyword",
        "app",
        "Keyword rules: text and menu keys answered by a reply or a named action.",
    ),
    "follower": Entry(
        _C + "follower",
        "app",
        "Followers: sync from WeChat, list, show, tag, untag, block, unblock.",
    ),
    "tag": Entry(_C + "tag", "app", "Follower tags: list (with counts), create, rename, delete."),
    "menu": Entry(
        _C + "menu",
        "app",
        "Menus as files: validate, plan, deploy, pull, history, rollback, approval.",
    ),
    "messages": Entry(_C + "messages", "app", "The conversation log: list, purge, export."),
    "outbox": Entry(
        _C + "outbox", "app", "The outbox: list, run (dispatch), retry, pause and resume sending."
    ),
    "broadcast": Entry(
        _C + "broadcast",
        "app",
        "Broadcasts: create, preview, submit, approve, send (now or by cron), track.",
    ),
    "template": Entry(_C + "template", "app", "Template messages: sync from WeChat, list, show."),
    "report": Entry(
        _C + "report",
        "app",
        "Reports: messages, followers, menus, keywords, agents, broadcasts, WeChat API health.",
    ),
    "agent": Entry(
        _C + "agent",
        "app",
        "Agents: agents and groups, their WeChat kf accounts, status.",
    ),
    "backend": Entry(
        _C + "backend",
        "app",
        "The bank's back-end: set, show, check; and a sandbox that plays it.",
    ),
    "branch": Entry(
        _C + "branch",
        "app",
        "Branches and ATMs: import from CSV, list, show, add, remove, find the nearest.",
    ),
    "alert": Entry(
        _C + "alert",
        "app",
        "Alerts: back-end events to template messages, with SMS when WeChat cannot deliver.",
    ),
}


class _Root(TyperGroup):
    """Loads commands on demand; the one place where errors become a message and an exit code
    (STYLE §5)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = self.commands[cmd_name] = load(cmd_name)
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from COMMANDS, without importing every command for its help."""
        from typer._click.utils import make_default_short_help

        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            entry = COMMANDS.get(name)
            if entry is not None and name not in self.commands:
                rows.append((name, make_default_short_help(entry.help, limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: Any) -> Any:  # typer types ctx with its private Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own: usage errors exit 2
        except BankwxError as exc:
            say_error(f"Error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            say_error("Interrupted.")
            raise typer.Exit(INTERRUPTED) from None
        except Exception as exc:
            if ctx.meta.get("debug"):
                raise
            say_error(f"Internal error ({type(exc).__name__}); run again with --debug.")
            raise typer.Exit(FAILED) from None
        finally:
            obj = ctx.obj
            if isinstance(obj, Cli):
                obj.close()


app = typer.Typer(
    cls=_Root,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="bankwx: operations toolkit for a bank's WeChat Official Account service platform.",
    epilog="Examples:\n\n  bankwx init\n\n  bankwx account list --format json\n\n"
    "  bankwx --db x.db audit --since 2026-11-01",
)


def load(name: str) -> Any:
    """The click command of a root command, built as add_typer()/command() would build it."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        return _group(target, name)
    return _command(CommandInfo(name=name, callback=target))


def _command(info: CommandInfo) -> Any:
    return typer.main.get_command_from_info(
        info,
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


def _group(target: typer.Typer, name: str) -> _Group:
    """A group built as add_typer() builds it, except that each of its commands is built when
    first asked for (typer reads every parameter of every function it builds a command of)."""
    shell = copy.copy(target)
    shell.registered_commands, shell.registered_groups = [], []
    group = typer.main.get_group_from_info(
        TyperInfo(shell, name=name, cls=_Group),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )
    assert isinstance(group, _Group)  # noqa: S101 - cls above
    for info in target.registered_commands:
        assert info.callback is not None  # noqa: S101 - typer requires one
        group.pending[info.name or typer.main.get_command_name(info.callback.__name__)] = info
    for sub in target.registered_groups:
        assert sub.typer_instance is not None and sub.name  # noqa: S101 - typer requires them
        group.pending[sub.name] = sub.typer_instance
    return group


class _Group(TyperGroup):
    """A command group whose commands are built on first use (see _group)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[str, CommandInfo | typer.Typer] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.pending, *(name for name in self.commands if name not in self.pending)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.pending:
            item = self.pending[cmd_name]
            built = _group(item, cmd_name) if isinstance(item, typer.Typer) else _command(item)
            command = self.commands[cmd_name] = built
        return command


# --- option values without pydantic ------------------------------------------------------------
#
# typer turns every option's value into its annotated type with a pydantic TypeAdapter, built on
# first use: the first option of a command costs the import of pydantic (about as much as typer
# itself). The common, unambiguous cases below are converted directly, exactly as the adapter
# would; anything else (an invalid value, a constraint, an unusual type) goes to typer's own
# coercion, so results and error messages stay typer's. Without the typer internals this relies
# on, nothing is installed and typer does all the work.

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_FALL_BACK = object()


def _quick_value(annotation: Any, info: Any, value: Any, ctx: Any, param: Any) -> Any:
    """value converted as typer's adapter converts it, or _FALL_BACK when unsure."""
    from typer._param_types import coerce_cli_choice, coerce_cli_path

    if annotation is str:
        return value if isinstance(value, str) else _FALL_BACK
    if annotation is bool:
        if isinstance(value, str):  # from a variable: typer strips it; '' is False
            word = value.strip()
            try:
                return settings.parse_bool(word) if word else False
            except ValueError:
                return _FALL_BACK
        return value if isinstance(value, bool) else _FALL_BACK
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return _in_range(value, info)
        if isinstance(value, str) and _INT.fullmatch(value):
            return _in_range(int(value), info)
        return _FALL_BACK
    if annotation is float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return _in_range(float(value), info)
        if isinstance(value, str) and _FLOAT.fullmatch(value):
            return _in_range(float(value), info)
        return _FALL_BACK
    if annotation is Path:
        if isinstance(value, str) and value:
            value = Path(value)
        if not isinstance(value, Path):
            return _FALL_BACK
        return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(
                value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:
            return _FALL_BACK  # typer words the refusal
    return _FALL_BACK


def _in_range(number: float, info: Any) -> Any:
    """number when within the option's range (min, max), else _FALL_BACK: typer refuses it."""
    if info.min is not None and number < info.min:
        return _FALL_BACK
    if info.max is not None and number > info.max:
        return _FALL_BACK
    return number


def _quick_param(param: Any) -> Any:
    """A runtime coercion for param that needs no pydantic, or None to leave it to typer."""
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_choice, coerce_cli_path  # noqa: F401
    except ImportError:  # another typer: it coerces everything itself
        return None
    descriptor: Any = getattr(param, "type_descriptor", None)
    if descriptor is None or not hasattr(param, "_runtime_param"):
        return None
    info, annotation = descriptor.parameter_info, descriptor.annotation
    plain = (
        info.parser is None
        and getattr(info, "click_type", None) is None
        and not getattr(info, "clamp", False)
        and getattr(info, "path_type", None) is None
        and not (param.multiple or param.nargs != 1)
        and not descriptor.is_file
    )
    choice = isinstance(annotation, type) and issubclass(annotation, Enum)
    if not plain or not (choice or annotation in (str, bool, int, float, Path)):
        return None

    class Quick(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            quick = _quick_value(annotation, info, value, ctx, param)
            if quick is _FALL_BACK:
                return build_runtime_param(descriptor)._coerce_value(value, param=param, ctx=ctx)
            return quick

    return Quick(parameter_info=info, annotation=annotation)


def _install_quick_coercion() -> None:
    """Have typer's parameters try the quick coercion before building their adapter."""
    try:
        from typer.core import _TyperParameter
    except ImportError:
        return
    original = getattr(_TyperParameter, "get_runtime_param", None)
    if original is None or getattr(original, "quick", False):
        return

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", None) is None:
            quick = _quick_param(self)
            if quick is not None:
                self._runtime_param = quick
        return original(self)

    get_runtime_param.quick = True  # type: ignore[attr-defined]
    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


_install_quick_coercion()


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"bankwx {__version__}\n")
        raise typer.Exit(OK)


def configure_logging(verbose: int, debug: bool, fmt: str = "text") -> None:
    """The command's logging (see bankwx_cli/logs.py: one setup for every process)."""
    from bankwx_cli import logs  # here: `bankwx --version` need not load logging

    logs.setup(verbose, debug, fmt)


def root(ctx: typer.Context, **options: Any) -> None:
    """bankwx: operations toolkit for a bank's WeChat Official Account service platform.

    Manage accounts, menus, broadcasts, followers and the callback receiver from a terminal,
    cron or deployment scripts, against a local SQLite store.
    """
    ctx.meta["debug"] = bool(options.get("debug"))
    chosen = settings.from_options(options)
    configure_logging(chosen.verbose, chosen.debug, chosen.log_format)
    if chosen.verbose >= 2:  # -vv: the command's time and SQL count at its end
        from bankwx_cli import logs

        ctx.call_on_close(logs.summary(ctx.invoked_subcommand or ""))
    ctx.obj = Cli(chosen)


# What the command line adds to a global option's row of settings.OPTIONS: the range of a number
# (outside it, a usage error) and what completes a name.
_OPTION_EXTRAS: dict[str, dict[str, Any]] = {
    "retry_budget_s": {"min": 0},
    "token_lease_s": {"min": 1},
    "account": {"autocompletion": complete_account},
    "operator": {"autocompletion": complete_operator},
}


def _root_signature() -> inspect.Signature:
    """root's options, one per row of settings.OPTIONS (typer reads the signature)."""
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params[0] = params[0].replace(annotation=typer.Context)
    for option in settings.OPTIONS:
        spec = option.spec
        kind: Any = spec.choices or option.type
        default = option.default
        if default is MISSING or default is None:
            kind, default = kind | None, None
        elif spec.choices is not None:
            default = spec.choices(default)
        info = typer.Option(
            *spec.flags,
            envvar=spec.env,
            help=spec.help,
            hidden=spec.hidden,
            count=spec.count,
            **_OPTION_EXTRAS.get(option.name, {}),
        )
        params.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kind, info],
            )
        )
    version = typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    params.append(
        inspect.Parameter(
            "version",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[bool | None, version],
        )
    )
    return inspect.Signature(params)


root.__signature__ = _root_signature()  # type: ignore[attr-defined]
root.__annotations__ = {p.name: p.annotation for p in root.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.callback()(root)


def run() -> None:
    """The console script."""
    app()


if __name__ == "__main__":
    run()

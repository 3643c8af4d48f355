"""What every command shares: the Cli object on ctx.obj, option aliases and one renderer."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bankwx_cli.errors import ConfirmationRequired, ValidationError
from bankwx_cli.models.progress import ProgressBar, no_progress
from bankwx_cli.settings import FORMATS, Fmt, Settings, variable

__all__ = ["Fmt"]  # re-exported: commands import it from here

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from bankwx_cli.context import AppContext


@cache
def err_console() -> Console:
    """rich on stderr, for progress bars (imported only when one is shown)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def say_error(message: str) -> None:
    """One message for people on stderr, as it is (no markup, no wrapping)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# --- shell completion ---------------------------------------------------------------------
#
# Account names, operator names and broadcast ids, read from the store that --db (BANKWX_DB)
# names, as the acting operator may see them. Completion runs on every Tab: it only reads (a
# refusal is not audited), asks nothing and says nothing; whatever goes wrong (no store, not a
# store, a locked file) completes nothing.


def _completing(ctx: typer.Context, kind: str, incomplete: str) -> list[str]:
    try:
        from bankwx_cli import settings as settings_module
        from bankwx_cli.context import AppContext
        from bankwx_cli.domain import completions

        root = ctx.find_root()
        chosen = settings_module.from_options(root.params)
        account = ctx.params.get("account") or chosen.account
        app = AppContext(chosen)
        try:
            values = completions.values(app, kind, account=account)
        finally:
            app.close()
    except Exception:  # completion stays silent, whatever went wrong
        return []
    return [v for v in values if v.startswith(incomplete)]


def complete_account(ctx: typer.Context, incomplete: str) -> list[str]:
    """Account names, for a parameter naming an account."""
    return _completing(ctx, "account", incomplete)


def complete_operator(ctx: typer.Context, incomplete: str) -> list[str]:
    """Operator names, for a parameter naming an operator."""
    return _completing(ctx, "operator", incomplete)


def complete_broadcast(ctx: typer.Context, incomplete: str) -> list[str]:
    """Broadcast ids (of --account, when given), newest first."""
    return _completing(ctx, "broadcast", incomplete)


# --- shared options ------------------------------------------------------------------------

#: SQLite's largest integer: an id or a count beyond it names no row (and would overflow).
MAX_INT = 2**63 - 1


def id_argument(help: str, complete: Callable[..., list[str]] | None = None) -> Any:
    """A row id given as an argument: a whole number from 1 (a usage error otherwise)."""
    return typer.Argument(metavar="ID", help=help, min=1, max=MAX_INT, autocompletion=complete)


def checked(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """An option's callback for a value the domain checks against its list (an enumeration the
    command line cannot spell as a choice, such as one with aliases): the domain's refusal is a
    usage error (exit 2), as an invalid choice is; the value is the one the check returns."""

    def callback(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check(value)
        except ValidationError as exc:
            raise typer.BadParameter(str(exc)) from None

    return callback


def limit_option(help: str) -> Any:
    """--limit N: a whole number from 1."""
    return typer.Option("--limit", help=help, min=1, max=MAX_INT)


AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        envvar=variable("account"),
        help="Official account name; may be left out when the store holds one account.",
        show_envvar=False,
        autocompletion=complete_account,
    ),
]
FormatOption = Annotated[
    Fmt | None,
    typer.Option(
        "--format",
        envvar=variable("fmt"),
        help="Output: table (terminal default), json, csv, markdown, plain (default elsewhere).",
        show_envvar=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
]

Row = Mapping[str, Any]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _iso(value)
    return value


# A time as the store and the machine formats write it (clock.iso): UTC, ISO 8601, with Z.
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?Z")


def _iso(value: datetime) -> str:
    from bankwx_cli.clock import iso

    return iso(value)


def _json_default(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else str(value)


def _tidy(key: str, value: Any) -> Any:
    """A value as every format shows it: times as ISO 8601 UTC, milliseconds (``*_ms``) to
    one decimal; within mappings and lists too."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, float) and key.endswith("_ms"):
        return round(value, 1)
    if isinstance(value, Mapping):
        return {k: _tidy(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tidy(key, v) for v in value]
    return value


def _for_people(key: str, value: Any) -> Any:
    """A cell of a table for people: times in the bank's time (clock.bank_time), milliseconds
    with one decimal, the rest as _cell shows it."""
    cell = _cell(value)
    if isinstance(cell, str) and _ISO_UTC.fullmatch(cell):
        from bankwx_cli.clock import bank_time, from_iso

        return bank_time(from_iso(cell))
    if isinstance(cell, float) and key.endswith("_ms"):
        return f"{cell:.1f}"
    return cell


def to_row(item: Any) -> dict[str, Any]:
    """A row to render: a mapping, a model's ``to_json()`` (its one JSON shape), a dataclass;
    times as ISO 8601 UTC and milliseconds to one decimal (see _tidy)."""
    if isinstance(item, Mapping):
        row = dict(item)
    elif callable(getattr(item, "to_json", None)):
        row = dict(item.to_json())
    elif is_dataclass(item) and not isinstance(item, type):
        row = asdict(item)
    else:
        raise TypeError(f"cannot render {type(item).__name__}")
    return {k: _tidy(str(k), v) for k, v in row.items()}


class Cli:
    """The command layer's view of one invocation: settings, context, output."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: AppContext | None = None

    @property
    def app(self) -> AppContext:
        if self._app is None:
            from bankwx_cli.context import AppContext

            self._app = AppContext(self.settings)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()

    def with_account(self, account: str | None) -> str | None:
        return account or self.settings.account

    @property
    def interactive(self) -> bool:
        if self.settings.interactive is not None:
            return self.settings.interactive
        return sys.stdin.isatty() and sys.stderr.isatty()

    def fmt(self, fmt: Fmt | str | None) -> str:
        chosen = str(fmt.value if isinstance(fmt, Fmt) else fmt) if fmt else self.settings.fmt
        if chosen is None:
            chosen = "table" if sys.stdout.isatty() else "plain"
        if chosen not in FORMATS:
            raise ValidationError(f"--format '{chosen}' is invalid: use {', '.join(FORMATS)}.")
        return chosen

    # --- output ---------------------------------------------------------------------------

    def render(
        self,
        rows: Sequence[Any],
        fmt: Fmt | str | None = None,
        columns: Sequence[str] | None = None,
        title: str | None = None,
        empty: str = "Nothing to show.",
    ) -> None:
        """Render a list: rich table, tabulate (markdown, plain), csv, or a JSON array."""
        chosen = self.fmt(fmt)
        if chosen == "json":
            self.for_json(list(rows), chosen)
            return
        data = [to_row(r) for r in rows]
        cols = list(columns) if columns else (list(data[0]) if data else [])
        if not cols:  # nothing, and no columns to head a CSV with
            self.say(empty)
            return
        if chosen == "csv":
            import csv
            import io

            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(cols)
            for row in data:
                writer.writerow([_cell(row.get(c)) for c in cols])
            sys.stdout.write(buf.getvalue())
            return
        if not data:
            self.say(empty)
            return
        table = [[_for_people(c, row.get(c)) for c in cols] for row in data]
        if chosen == "table":
            from rich.console import Console
            from rich.table import Table

            rich_table = Table(title=title, show_lines=False)
            for col in cols:
                rich_table.add_column(col)
            for line in table:
                rich_table.add_row(*(str(v) for v in line))
            Console().print(rich_table)
            return
        from tabulate import tabulate

        tablefmt = "github" if chosen == "markdown" else "plain"
        # Milliseconds keep their one decimal (tabulate would print 16.0 as 16); Chinese text
        # is measured by its display width (tabulate does when wcwidth is installed).
        keep = [i for i, c in enumerate(cols) if c.endswith("_ms")]
        text = tabulate(table, headers=cols, tablefmt=tablefmt, disable_numparse=keep or False)
        sys.stdout.write(text + "\n")

    def render_one(
        self,
        item: Any,
        fmt: Fmt | str | None = None,
        title: str | None = None,
        say: str | None = None,
        show: Any = None,
    ) -> None:
        """Render one thing: a JSON object, or a two-column field/value table.

        With ``say`` (an outcome, such as a batch's summary line), the formats for people
        show that line on stderr instead of the table; JSON still gets the object. With
        ``show`` too, they show the line and then ``show``'s table (``item`` itself, say).
        """
        if self.fmt(fmt) == "json":
            self.for_json(item, fmt)
        elif say is None:
            self.for_people(fmt, one=item, title=title)
        else:
            self.for_people(fmt, say=say, one=show, title=title)

    def for_json(self, item: Any, fmt: Fmt | str | None = None) -> None:
        """The JSON form alone: ``item`` (a model's ``to_json()``, a mapping, a list of them)
        as JSON when the format is json; nothing in the formats for people."""
        if self.fmt(fmt) != "json":
            return
        data = [to_row(i) for i in item] if isinstance(item, list | tuple) else to_row(item)
        text = json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)
        sys.stdout.write(text + "\n")

    def for_people(
        self,
        fmt: Fmt | str | None = None,
        *,
        say: str | None = None,
        one: Any = None,
        rows: Sequence[Any] | None = None,
        columns: Sequence[str] | None = None,
        text: str | None = None,
        title: str | None = None,
        empty: str = "Nothing to show.",
    ) -> None:
        """The forms for people alone (nothing in JSON): ``say`` on stderr, then one of
        ``one`` (a field/value table), ``rows`` (a table), or ``text`` as it is on stdout.
        With both ``text`` and ``rows``, table and plain get the text, csv and markdown the
        rows (the text is the terminal's reading of the rows)."""
        chosen = self.fmt(fmt)
        if chosen == "json":
            return
        if say is not None:
            self.say(say)
        if text is not None and (rows is None or chosen in ("table", "plain")):
            sys.stdout.write(text)
        elif rows is not None:
            self.render(rows, fmt=chosen, columns=columns, title=title, empty=empty)
        elif one is not None:
            row = to_row(one)
            if chosen == "csv":
                self.render([row], fmt=chosen)
                return
            self.render(
                [{"field": k, "value": _for_people(k, v)} for k, v in row.items()],
                fmt=chosen,
                title=title,
            )

    def say(self, message: str) -> None:
        """A message for people, on stderr (stdout stays data)."""
        say_error(message)

    def warn(self, message: str) -> None:
        say_error(f"Warning: {message}")

    def confirm(self, question: str, yes: bool) -> None:
        """Ask before a destructive action; off a terminal a missing --yes is a refusal."""
        if yes:
            return
        if not self.interactive:
            raise ConfirmationRequired(f"{question} Not on a terminal: add --yes to confirm.")
        if not typer.confirm(question, default=False, err=True):
            raise ConfirmationRequired("Cancelled; nothing was changed.")

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[ProgressBar]:
        """A progress bar on stderr on a terminal; a silent one elsewhere (a models.Progress,
        what every batch run takes)."""
        if not sys.stderr.isatty():
            with no_progress(description, total) as silent:
                yield silent
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console(),
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total)
            yield _Bar(bar, task)


class _Bar:
    def __init__(self, bar: Progress, task: Any) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def total(self, n: int | None) -> None:
        self._bar.update(self._task, total=n)


def get_cli(ctx: typer.Context) -> Cli:
    obj = ctx.find_root().obj
    if not isinstance(obj, Cli):
        raise RuntimeError("the root callback did not run")
    return obj


def split_csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]

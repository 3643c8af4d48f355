"""The root command: lazy commands, what start-up imports, settings declared once, exit codes,
and the test clock offset."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from bxtest import Bankwx
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from bankwx_cli import errors, main, settings
from bankwx_cli.models.batches import BatchFailure, BatchReport
from bankwx_cli.settings import OPTIONS, Fmt, Settings

PACKAGE = Path(main.__file__).parent
# What `bankwx --version` and `bankwx account list` must not import (issue 13: start-up).
HEAVY = (
    "wechatpy",
    "requests",
    "uvicorn",
    "prometheus_client",
    "bankwx_cli.sim",
    "bankwx_cli.server",
    "bankwx_cli.wechat.client",
    "sqlite_utils",
    "rich",
    "cryptography",
    "pydantic",
    "tabulate",
)


def _imported(*args: str) -> set[str]:
    """The modules a fresh `bankwx ARGS` process has imported when it ends."""
    script = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: sys.__stderr__.write("
        "'MODULES=' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
        f"sys.argv = ['bankwx', *{list(args)!r}]\n"
        "from bankwx_cli.main import run\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_version_imports_nothing_heavy() -> None:
    modules = _imported("--version")
    assert _heavy(modules) == []
    loaded = [m for m in modules if m.startswith(("bankwx_cli.commands.", "bankwx_cli.domain"))]
    assert loaded == ["bankwx_cli.commands._cli"]


def test_account_list_imports_nothing_heavy(with_account: Bankwx) -> None:
    modules = _imported("account", "list", "--format", "json")
    assert _heavy(modules) == []
    assert "bankwx_cli.commands.account" in modules
    assert "bankwx_cli.commands.broadcast" not in modules  # only the group that runs
    # nor the models (dataclasses cost at import) that only other commands build
    lighter = {"credentials", "audit", "operators", "account_changes", "batches", "wechat"}
    assert {m for m in modules if m.removeprefix("bankwx_cli.models.") in lighter} == set()


# --- the root's table of commands --------------------------------------------------------------


def _first_paragraph(text: str | None) -> str:
    return inspect.cleandoc(text or "").split("\n\n")[0].replace("\n", " ")


def test_command_table_matches_each_commands_own_help() -> None:
    for name, entry in main.COMMANDS.items():
        command = main.load(name)
        assert command.name == name
        assert entry.help == _first_paragraph(command.help), name


def test_every_command_module_is_in_the_table() -> None:
    """A module-level typer.Typer or a registered function missing from COMMANDS would be
    unreachable: each one is named by a row."""
    named = {(entry.module, entry.attribute) for entry in main.COMMANDS.values()}
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = f"bankwx_cli.commands.{path.stem}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nested = {  # sub-groups reached through a named group: app.add_typer(group_app, ...)
            ast.unparse(node.value.args[0])
            for node in tree.body
            if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func).endswith(".add_typer")
        }
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                called = ast.unparse(node.value.func)
                if called == "typer.Typer":
                    for target in node.targets:
                        name = ast.unparse(target)
                        assert (module, name) in named or name in nested, (module, target)
    registered = typer.Typer()
    from bankwx_cli.commands import store

    store.register(registered)
    for info in registered.registered_commands:
        assert info.callback is not None
        assert ("bankwx_cli.commands.store", info.callback.__name__) in named


def test_root_help_lists_every_command_without_loading_them() -> None:
    script = (
        "import sys\n"
        "sys.argv = ['bankwx', '--help']\n"
        "from bankwx_cli.main import run\n"
        "try:\n    run()\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(m for m in sys.modules if m.startswith('bankwx_cli.commands.')"
        " and not m.endswith('._cli')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "LOADED=\n" in done.stdout
    commands = done.stdout.split("Commands:")[1]
    for name in main.COMMANDS:
        assert f"\n  {name} " in commands, name


def test_group_help_and_unknown_command(bankwx: Bankwx) -> None:
    shown = bankwx("account", "--help")
    assert shown.exit_code == 0 and "list " in shown.stdout and "add " in shown.stdout
    unknown = bankwx("acount", "list")
    assert unknown.exit_code == 2 and "No such command" in unknown.stderr
    sub = bankwx("account", "lst")
    assert sub.exit_code == 2 and "No such command" in sub.stderr


# --- settings declared once ------------------------------------------------------------------


def test_root_options_are_the_settings_table() -> None:
    root = typer.main.get_command(main.app)
    params = {p.name: p for p in root.params}
    for option in OPTIONS:
        param = params[option.name]
        assert param.envvar == option.spec.env, option.name
        flags = [*param.opts, *param.secondary_opts]
        assert option.flag in flags, option.name
        assert param.hidden == option.spec.hidden, option.name
    assert {o.name for o in OPTIONS} | {"version", "install_completion", "show_completion"} == set(
        params
    )


def test_every_option_round_trips_through_the_worker_environment() -> None:
    changed = Settings(
        db=Path("/tmp/x.db"),
        api_base="http://127.0.0.1:9",
        account="main",
        fmt="json",
        debug=True,
        verbose=2,
        log_format="json",
        operator="op",
        master_key="k",
        key_file=Path("/tmp/k"),
        sim="http://127.0.0.1:8",
        retry_budget_s=1.5,
        token_lease_s=123.0,
        interactive=False,
        test_actions=True,
        bench_no_rollups=True,
        test_clock_offset_s=-30.5,
    )
    assert set(vars(changed)) == {o.name for o in OPTIONS}  # every field set above
    for option in OPTIONS:
        assert getattr(changed, option.name) != option.default, option.name
    env = settings.environment(changed)
    assert settings.from_environment(env) == changed
    assert settings.from_environment(settings.environment(Settings(operator="x"))) == Settings(
        operator="x"
    )


_probe = typer.Typer()


@_probe.command()
def _show(
    flag: Annotated[bool, typer.Option("--flag", envvar="PROBE_FLAG")] = False,
    text: Annotated[str | None, typer.Option("--text")] = None,
    number: Annotated[int, typer.Option("--number")] = 0,
    ratio: Annotated[float, typer.Option("--ratio")] = 0.0,
    path: Annotated[Path | None, typer.Option("--path")] = None,
    fmt: Annotated[Fmt | None, typer.Option("--fmt")] = None,
) -> None:
    pass


_PROBE = typer.main.get_command(_probe)
_PARAMS = {p.name: p for p in _PROBE.params}


def _coerce(name: str, value: object, quick: bool) -> tuple[str, object]:
    """A value through typer's own coercion, or through bankwx's quick one."""
    from typer._click.exceptions import BadParameter
    from typer._coercion import build_runtime_param

    param: Any = _PARAMS[name]
    runtime = main._quick_param(param) if quick else build_runtime_param(param.type_descriptor)
    assert runtime is not None
    try:
        return "ok", runtime.coerce(value, param=param, ctx=typer.Context(_PROBE))
    except BadParameter as exc:
        return "refused", exc.format_message()


def _typer_reads(text: str) -> bool | None:
    """What typer makes of a boolean variable: True, False, or None when it refuses it."""
    outcome, value = _coerce("flag", text, quick=False)
    return value if outcome == "ok" else None  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("flag", [True, False, "1", "off", " Yes ", "", "maybe"]),
        ("text", ["", "x", "中文", " a b "]),
        ("number", [0, 7, "0", "12", "-3", "007", "+4", " 5", "1_000", "1.0", "x", ""]),
        ("ratio", [1, 2.5, "0", "0.5", "-1.25", "1e3", ".5", "inf", "x", ""]),
        ("path", ["a/b", "~/k", Path("x"), "", "-"]),
        ("fmt", ["json", "table", "JSON", "xml", ""]),
    ],
)
def test_quick_coercion_agrees_with_typer(name: str, values: list[object]) -> None:
    for value in values:
        assert _coerce(name, value, quick=True) == _coerce(name, value, quick=False), value


@given(
    st.one_of(
        st.sampled_from(sorted(settings.TRUE_WORDS | settings.FALSE_WORDS)),
        st.sampled_from(["maybe", "2", "-1", "yes please", "tru", "nope"]),
    ),
    st.randoms(),
)
def test_boolean_variables_accept_what_typer_accepts(word: str, random: Any) -> None:
    mixed = "".join(c.upper() if random.random() < 0.5 else c for c in word)
    try:
        ours: bool | None = settings.parse_bool(mixed)
    except ValueError:
        ours = None
    assert ours == _typer_reads(mixed)


@pytest.mark.parametrize("text", ["yes", "On", "TRUE", "1", "t", "Y"])
def test_cli_and_workers_read_booleans_alike(text: str) -> None:
    assert settings.from_environment({"BANKWX_DEBUG": text}).debug is True
    runner = CliRunner()
    result = runner.invoke(main.app, ["account", "--help"], env={"BANKWX_DEBUG": text})
    assert result.exit_code == 0


def test_bad_variables_are_refused() -> None:
    with pytest.raises(errors.ValidationError, match="BANKWX_DEBUG 'maybe' is invalid"):
        settings.from_environment({"BANKWX_DEBUG": "maybe"})
    with pytest.raises(errors.ValidationError, match="BANKWX_TOKEN_LEASE_S 'x' is invalid"):
        settings.from_environment({"BANKWX_TOKEN_LEASE_S": "x"})
    with pytest.raises(errors.ValidationError, match="BANKWX_FORMAT 'xml' is invalid"):
        settings.from_environment({"BANKWX_FORMAT": "xml"})


def test_cli_refuses_a_bad_boolean_as_usage(bankwx: Bankwx) -> None:
    result = bankwx("account", "list", env={"BANKWX_DEBUG": "maybe"})
    assert result.exit_code == errors.USAGE and "BANKWX_DEBUG" in result.stderr


def test_no_module_but_settings_reads_bankwx_variables() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "settings.py" and path.parent == PACKAGE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            reads = ("os.environ.get(", "os.getenv(", 'os.environ["BANKWX', "os.environ['BANKWX")
            if "BANKWX_" in line and any(r in line for r in reads):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}")
    assert offenders == []


# --- exit codes in one place -----------------------------------------------------------------


def test_batch_rule() -> None:
    refused = BatchFailure("unit 1", "WeChat 45009", wechat=True)
    lost = BatchFailure("unit 2", "caught mid-send", unknown=True)
    assert BatchReport(done=3).exit_code == errors.OK
    assert BatchReport(failures=(refused, refused)).exit_code == errors.WECHAT
    assert BatchReport(failures=(refused, lost)).exit_code == errors.FAILED
    assert BatchReport(failures=(BatchFailure("unit 3", "down"),)).exit_code == errors.FAILED


def test_no_exit_code_literals_in_commands() -> None:
    found = []
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in ("typer.Exit", "Exit")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


# --- the test clock offset -------------------------------------------------------------------


def _at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%MZ")


def test_clock_offset_moves_a_commands_time(with_account: Bankwx) -> None:
    create = ("broadcast", "create", "--text", "通知", "--to-all", "--at")
    assert with_account(*create, _at(1)).exit_code == 0
    ahead = {"BANKWX_TEST_ACTIONS": "1", "BANKWX_TEST_CLOCK_OFFSET": "7200"}
    moved = with_account(*create, _at(1), env=ahead)
    assert moved.exit_code == 1 and "is in the past" in moved.stderr
    behind = {"BANKWX_TEST_ACTIONS": "1", "BANKWX_TEST_CLOCK_OFFSET": "-7200.5"}
    assert with_account(*create, _at(-1), env=behind).exit_code == 0


def test_clock_offset_needs_test_actions(with_account: Bankwx) -> None:
    result = with_account("account", "list", env={"BANKWX_TEST_CLOCK_OFFSET": "60"})
    assert result.exit_code == 1
    assert "BANKWX_TEST_ACTIONS=1" in result.stderr and "Traceback" not in result.output


def test_bankwx_keeps_its_bytecode_under_pythondontwritebytecode(tmp_path: Path) -> None:
    """Its own modules only: another module imported in the same process writes no .pyc."""
    import importlib.util

    from bankwx_cli.commands import template

    cached = Path(importlib.util.cache_from_source(template.__file__))
    cached.unlink(missing_ok=True)
    (tmp_path / "probe_module.py").write_text("VALUE = 1\n", encoding="utf-8")
    script = "import bankwx_cli.main, bankwx_cli.commands.template, probe_module\n"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    assert cached.exists()
    assert not (tmp_path / "__pycache__").exists()

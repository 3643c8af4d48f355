"""docs/operations.md: every `bankwx` command in its systemd units and crontab lines names a
command and flags that exist, and parses as the CLI would parse it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from bankwx_cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _blocks(kind: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(rf"```{kind}\n(.*?)```", text, flags=re.S)


def _commands() -> list[str]:
    """The bankwx command of each ExecStart= and crontab line of the guide."""
    found = []
    for block in _blocks("ini"):
        for line in block.splitlines():
            if line.startswith("ExecStart="):
                found.append(line.removeprefix("ExecStart="))
    for block in _blocks("crontab"):
        for line in block.splitlines():
            if line.strip() and not line.startswith("#"):
                command = line.split("&&", 1)[1] if "&&" in line else " ".join(line.split()[5:])
                found.append(command.split(">>", 1)[0])
    return found


def _argv(command: str) -> list[str]:
    expanded = re.sub(r"\$\([^)]*\)", "20261202", command)  # what the shell substitutes
    words = shlex.split(expanded.replace("\\%", "%"))
    assert Path(words[0]).name == "bankwx", command
    return words[1:]


def _rest(ctx: Any) -> list[str]:
    """What a group left for its subcommand (the subcommand's name first)."""
    protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
    return [*protected, *ctx.args]


def _check(argv: list[str]) -> None:
    """Resolve the command word by word, then parse its arguments strictly, as a run would
    (an unknown command or option, a missing value or an invalid choice raises)."""
    command: Any = typer.main.get_command(main.app)
    words = list(argv)
    ctx = command.make_context("bankwx", list(words), resilient_parsing=True)
    words = _rest(ctx)
    while hasattr(command, "get_command"):
        assert words, f"a group, not a command: bankwx {' '.join(argv)}"
        name, words = words[0], words[1:]
        found = command.get_command(ctx, name)
        assert found is not None, f"no command '{name}' in: bankwx {' '.join(argv)}"
        command = found
        if hasattr(command, "get_command"):
            ctx = command.make_context(name, list(words), parent=ctx, resilient_parsing=True)
            words = _rest(ctx)
    command.make_context(name, list(words), parent=ctx)


COMMANDS = _commands()


def test_the_guide_has_units_and_crontab_lines() -> None:
    assert len(COMMANDS) >= 8
    for needed in ("serve", "broadcast run-due", "outbox run", "backup", "check"):
        assert any(" ".join(_argv(c)).startswith(needed) for c in COMMANDS), needed


@pytest.mark.parametrize("command", COMMANDS)
def test_each_line_names_a_command_and_flags_that_exist(command: str) -> None:
    _check(_argv(command))


def test_a_wrong_flag_would_be_caught() -> None:
    with pytest.raises(Exception, match=r"No such option"):
        _check(["outbox", "run", "--no-such-flag"])
    with pytest.raises(AssertionError, match="no command"):
        _check(["broadcast", "run-everything"])

"""docs/cli.md is generated and current; every command has help; every group an example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from bankwx_cli.main import app

ROOT = Path(__file__).parent.parent.parent


def _commands(group: Any, path: str = "bankwx") -> list[tuple[str, Any]]:
    found = []
    if not hasattr(group, "list_commands"):
        return found
    for name in group.list_commands(None):  # the root and groups load their commands lazily
        command = group.get_command(None, name)
        found.append((f"{path} {name}", command))
        found += _commands(command, f"{path} {name}")
    return found


def test_every_command_has_help_and_examples() -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) > 40
    missing_help = [p for p, c in commands if not (c.help or "").strip()]
    assert missing_help == []
    for path, command in commands:
        if hasattr(command, "list_commands"):
            continue  # a group; its commands carry the examples
        text = (command.help or "") + (command.epilog or "")
        assert "Examples:" in text or "bankwx" in (command.epilog or ""), path


def test_docs_are_current(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "typer",
            "bankwx_cli.main",
            "utils",
            "docs",
            "--name",
            "bankwx",
            "--output",
            str(fresh),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == current, "run: make docs"

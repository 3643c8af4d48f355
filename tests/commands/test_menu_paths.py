"""Menu files and output paths that cannot be used: one line naming the path, never a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from bxprocs import Sim

MENU: dict[str, Any] = {"button": [{"type": "click", "name": "账户查询", "key": "BALANCE"}]}


@pytest.fixture
def live(with_account: Any, sim: Sim, write: Callable[[str, Any], Path]) -> Any:
    """The store's account with MENU live on the simulator."""
    deployed = with_account("menu", "deploy", str(write("menu.json", MENU)), "--yes")
    assert deployed.exit_code == 0, deployed.output
    return with_account


def test_pull_into_a_missing_folder_names_the_folder(live: Any, tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "x.yaml"
    result = live("menu", "pull", "-o", str(target))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --output '{target}': there is no folder '{target.parent}'. Create it first "
        "or write somewhere else.\n"
    )
    assert not target.parent.exists()


def test_pull_into_a_directory_is_refused(live: Any, tmp_path: Path) -> None:
    result = live("menu", "pull", "--output", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --output '{tmp_path}' is a directory: give a file name, e.g. "
        f"{tmp_path / 'menu.yaml'}.\n"
    )


def test_pull_under_a_file_is_refused(live: Any, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = live("menu", "pull", "-o", str(tmp_path / "file" / "x.json"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --output '{tmp_path / 'file' / 'x.json'}': '{tmp_path / 'file'}' is not a "
        "folder.\n"
    )


def test_a_path_refused_is_refused_before_wechat_is_asked(
    with_account: Any, sim: Sim, tmp_path: Path
) -> None:
    """With no menu live, the path is still what is refused: it is checked first."""
    result = with_account("menu", "pull", "-o", str(tmp_path / "no" / "x.json"))
    assert result.exit_code == 1
    assert "there is no folder" in result.stderr
    assert sim.driver.log(kind="api") == []  # not even a token


def test_pull_writes_yaml_and_json_by_the_suffix(live: Any, tmp_path: Path) -> None:
    for name, load in (
        ("m.yaml", yaml.safe_load),
        ("m.yml", yaml.safe_load),
        ("m.txt", json.loads),
    ):
        result = live("menu", "pull", "-o", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        assert result.stderr == f"Wrote the live menu to {tmp_path / name}.\n"
        assert load((tmp_path / name).read_text(encoding="utf-8")) == {"menu": MENU}


@pytest.mark.parametrize("command", ["validate", "plan", "deploy"])
def test_a_missing_menu_file_or_a_directory_is_a_usage_error(
    store_ready: Any, tmp_path: Path, command: str
) -> None:
    for path in (tmp_path / "nope.yaml", tmp_path):
        result = store_ready("menu", command, str(path))
        assert result.exit_code == 2, result.output
        assert "Internal error" not in result.output
        assert str(path) in result.output

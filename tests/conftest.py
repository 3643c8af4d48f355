"""Shared fixtures: a clean environment per test, the CLI runner, an initialised store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bxtest import TEST_KEY, Bankwx, add_account_args
from hypothesis import settings as hypothesis_settings
from typer.testing import CliRunner, Result

hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's BANKWX_* settings or touches the real key file."""
    for name in list(os.environ):
        if name.startswith("BANKWX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BANKWX_DB", str(tmp_path / "bankwx.db"))
    monkeypatch.setenv("BANKWX_KEY_FILE", str(tmp_path / "master.key"))
    monkeypatch.setenv("BANKWX_MASTER_KEY", TEST_KEY)
    monkeypatch.setenv("BANKWX_OPERATOR", "alice")
    monkeypatch.setenv("BANKWX_DEBUG", "1")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bankwx.db"


@pytest.fixture
def bankwx() -> Bankwx:
    """Run `bankwx ARGS...` in-process; returns typer's Result (stdout and stderr apart)."""
    from bankwx_cli.main import app

    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return run


@pytest.fixture
def store_ready(bankwx: Bankwx) -> Bankwx:
    """An initialised store with alice as administrator."""
    result = bankwx("init")
    assert result.exit_code == 0, result.output
    return bankwx


@pytest.fixture
def with_account(store_ready: Bankwx) -> Bankwx:
    """An initialised store holding one safe-mode account 'main'."""
    result = store_ready(*add_account_args())
    assert result.exit_code == 0, result.output
    return store_ready

"""Shared fixtures: a clean environment per test, the CLI runner, an initialised store, and the
simulator and receivers (started only here, through bxprocs; per xdist worker)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bxprocs import Proc, Sim, SimOptions, SimPool, SimProc
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


# -- the simulator and the receiver ---------------------------------------------------------

BIG = (25_000, 3)  # followers and seed of the large follower simulator (as in the outside check)
SMALL = (60, 5)  # and of the small one


@pytest.fixture(scope="session")
def sim_pool() -> Iterator[SimPool]:
    """Every simulator of the session: one process per size, one app in a thread."""
    pool = SimPool()
    yield pool
    pool.close()


@pytest.fixture
def sim_options() -> SimOptions:
    """The simulator the `sim` fixture gives; a directory or module overrides this fixture."""
    return SimOptions()


@pytest.fixture
def sim(
    sim_pool: SimPool, sim_options: SimOptions, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sim]:
    """The test's WeChat: a simulator process of the `sim_options` size, reset to its generated
    followers (no accounts, menus, log or faults), that bankwx talks to."""
    with sim_pool.use(sim_options, monkeypatch) as handle:
        yield handle


def _follower_sim(
    pool: SimPool, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimProc]:
    sim = SimProc(pool.process(*size).url)
    sim.reset()
    monkeypatch.setenv("BANKWX_API_BASE", sim.url)
    monkeypatch.setenv("BANKWX_SIM", sim.url)
    monkeypatch.setenv("BANKWX_RETRY_BUDGET_S", "5")
    yield sim
    sim.close()


@pytest.fixture
def big_sim(sim_pool: SimPool, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimProc]:
    """The simulator with 25,000 followers (seed 3), fresh, as the test's WeChat."""
    yield from _follower_sim(sim_pool, BIG, monkeypatch)


@pytest.fixture
def small_sim(sim_pool: SimPool, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimProc]:
    """The simulator with 60 followers (seed 5), fresh, as the test's WeChat."""
    yield from _follower_sim(sim_pool, SMALL, monkeypatch)


@pytest.fixture
def receivers() -> Iterator[list[Proc]]:
    """Receivers (`bankwx serve`, from bxprocs.serve or start_receiver), stopped at the end."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def account(store_ready: Bankwx, sim: Sim) -> Bankwx:
    """A safe-mode account 'main' in the store (not yet registered with the simulator)."""
    result = store_ready(*add_account_args())
    assert result.exit_code == 0, result.output
    return store_ready


# -- the store and processes from outside ----------------------------------------------------

StoreReader = Any  # (sql, *params) -> list of row tuples
Waiter = Any  # (predicate, timeout=30.0, what="condition") -> None


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bankwx.db"


@pytest.fixture
def read_store(db: Path) -> StoreReader:
    """Read the store as another process would (what was committed)."""

    def read(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(str(db), timeout=5)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    return read


@pytest.fixture
def wait_for() -> Waiter:
    def wait(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    return wait


@pytest.fixture
def spawn() -> Iterator[Any]:
    """Start `bankwx ARGS...` as a subprocess with the test's environment (its store, its
    simulator); every process still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "bankwx_cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.fixture
def write(tmp_path: Path) -> Any:
    """write(name, data) -> Path: a file in the test's directory, JSON (ensure_ascii off) or
    raw text."""

    def run(name: str, data: Any) -> Path:
        path = tmp_path / name
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        path.write_text(text, encoding="utf-8")
        return path

    return run

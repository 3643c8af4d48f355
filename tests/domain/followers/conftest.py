"""Fixtures for followers and tags: the simulator as a `bankwx sim api` subprocess (one per
session and size, reset to its generated followers before each test), its API as a client
would call it, and `bankwx` subprocesses sharing the test's store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxtest import APPID, SECRET

BIG = 25_000  # followers of the large simulator (seed 3, as in the outside check)
SMALL = 60  # followers of the small one (seed 5)


@dataclass
class SimProc:
    """A running `bankwx sim api` process and a client for its API and /sim/ endpoints."""

    url: str
    process: subprocess.Popen[str]
    http: httpx.Client = field(init=False)
    _token: str | None = None

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, trust_env=False, timeout=60)

    def reset(self) -> None:
        self.control("POST", "/sim/reset", {"all": True})
        self._token = None

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    def faults(self, **values: Any) -> None:
        self.control("POST", "/sim/faults", values)

    def token(self) -> str:
        if self._token is None:
            response = self.http.get(
                "/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
            )
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        """Call a WeChat API as a client would (raw UTF-8 JSON, token in the query)."""
        params = {"access_token": self.token(), **query}
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        response = self.http.request(method, path, params=params, content=content)
        assert response.status_code == 200, response.text
        return response.json()

    def followers(self, include_unsubscribed: bool = True) -> list[dict[str, Any]]:
        """The account's followers in follow order (its first token request makes them)."""
        self.token()
        params: dict[str, Any] = {"appid": APPID, "limit": 1_000_000}
        if include_unsubscribed:
            params["all"] = 1
        response = self.http.get("/sim/followers", params=params)
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()
        return result

    def log(self, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """API calls logged after ``since`` (a seq number), of one path or all."""
        params: dict[str, Any] = {"kind": "api", "since": since}
        if path is not None:
            params["path"] = path
        response = self.http.get("/sim/log", params=params)
        result: list[dict[str, Any]] = response.json()
        return result

    def last_seq(self) -> int:
        entries = self.http.get("/sim/log", params={"limit": 1}).json()
        return int(entries[-1]["seq"]) if entries else 0

    def unsubscribe(self, openid: str) -> None:
        self.control("POST", f"/sim/followers/{openid}/unsubscribe", {"appid": APPID})

    def subscribe(self, openid: str, scene: str = "ADD_SCENE_SEARCH") -> None:
        self.control("POST", f"/sim/followers/{openid}/subscribe", {"appid": APPID, "scene": scene})

    def close(self) -> None:
        self.http.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def bankwx_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bankwx_cli", *args]


def start_listening(args: list[str], env: dict[str, str] | None = None) -> tuple[str, Any]:
    """Start a command that prints `Listening on URL` first; returns (URL, process)."""
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Listening on "):
        process.kill()
        raise RuntimeError(f"{args[3:5]} did not start: {line!r}")
    return line.split()[-1], process


def _start_sim(followers: int, seed: int) -> SimProc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
    url, process = start_listening(
        bankwx_command(
            "sim", "api", "--port", "0", "--followers", str(followers), "--seed", str(seed)
        ),
        env,
    )
    return SimProc(url, process)


@pytest.fixture(scope="session")
def _big_sim() -> Iterator[SimProc]:
    sim = _start_sim(BIG, 3)
    yield sim
    sim.close()


@pytest.fixture(scope="session")
def _small_sim() -> Iterator[SimProc]:
    sim = _start_sim(SMALL, 5)
    yield sim
    sim.close()


def _use(sim: SimProc, monkeypatch: pytest.MonkeyPatch) -> SimProc:
    sim.reset()
    monkeypatch.setenv("BANKWX_API_BASE", sim.url)
    monkeypatch.setenv("BANKWX_SIM", sim.url)
    monkeypatch.setenv("BANKWX_RETRY_BUDGET_S", "5")
    return sim


@pytest.fixture
def big_sim(_big_sim: SimProc, monkeypatch: pytest.MonkeyPatch) -> SimProc:
    """The simulator with 25,000 followers (seed 3), fresh, as the test's WeChat."""
    return _use(_big_sim, monkeypatch)


@pytest.fixture
def small_sim(_small_sim: SimProc, monkeypatch: pytest.MonkeyPatch) -> SimProc:
    """The simulator with 60 followers (seed 5), fresh, as the test's WeChat."""
    return _use(_small_sim, monkeypatch)


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
            bankwx_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()

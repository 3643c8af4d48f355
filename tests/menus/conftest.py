"""Fixtures for the menu commands: the real simulator (`bankwx sim api --port 0`) in a
subprocess, reset for every test, and a direct line to its WeChat API that does not go through
bankwx's client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bankwx_cli.sim.driver import SimDriver

APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"


@dataclass
class Sim:
    """A running simulator: its URL, its control driver and its WeChat API."""

    url: str
    driver: SimDriver
    http: httpx.Client

    def token(self) -> str:
        answer = self.http.post(
            "/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        ).json()
        return str(answer["access_token"])

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """WeChat's answer to one API call, made with a token of our own."""
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        response = self.http.request(
            method, path, params={"access_token": self.token()}, content=content
        )
        return response.json()

    def menu(self) -> Any:
        """The simulator's menu/get answer."""
        return self.call("GET", "/cgi-bin/menu/get")

    def calls(self, path: str) -> list[dict[str, Any]]:
        """The API calls logged for this path."""
        return self.driver.log(kind="api", path=path)


@pytest.fixture(scope="session")
def _sim_process() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", "sim", "api", "--port", "0", "--followers", "12"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Listening on "):
        process.kill()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    url = line.split()[-1]
    try:
        with SimDriver(url) as driver:
            for _ in range(100):
                try:
                    driver.state()
                    break
                except Exception:  # not up yet
                    time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        process.stdout.close()


@pytest.fixture
def sim(_sim_process: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    """A forgetful simulator (no accounts, menus, log or faults) that bankwx talks to."""
    monkeypatch.setenv("BANKWX_API_BASE", _sim_process)
    monkeypatch.setenv("BANKWX_RETRY_BUDGET_S", "2")
    with (
        SimDriver(_sim_process) as driver,
        httpx.Client(base_url=_sim_process, trust_env=False, timeout=10) as http,
    ):
        driver.reset(everything=True)
        yield Sim(_sim_process, driver, http)


@pytest.fixture
def write(tmp_path: Path) -> Any:
    """write(name, data) -> Path: a menu file, JSON (ensure_ascii off) or raw text."""

    def run(name: str, data: Any) -> Path:
        path = tmp_path / name
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        path.write_text(text, encoding="utf-8")
        return path

    return run

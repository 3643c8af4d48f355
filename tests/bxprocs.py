"""Real processes for tests: the simulator and the receiver on free loopback ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

from bankwx_cli.sim.driver import SimDriver


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    url: str

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._close()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def _close(self) -> None:
        if self.popen.stdout is not None and not self.popen.stdout.closed:
            self.popen.stdout.close()


def _drain(stream: IO[str]) -> None:
    """Read what the child still prints, so its pipe never fills."""
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        pass


def start(args: list[str], env: dict[str, str] | None = None, health: str = "") -> Proc:
    """Start `bankwx ARGS` and wait for its `Listening on URL` line (and health path)."""
    popen = subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert popen.stdout is not None
    line = popen.stdout.readline().strip()
    if not line.startswith("Listening on "):
        popen.kill()
        raise RuntimeError(f"bankwx {' '.join(args)} did not start: {line!r}")
    url = line.removeprefix("Listening on ")
    threading.Thread(target=_drain, args=(popen.stdout,), daemon=True).start()
    if health:
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if httpx.get(url + health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return Proc(popen, url)


@contextmanager
def simulator(followers: int = 20, seed: int = 1, *extra: str) -> Iterator[tuple[Proc, SimDriver]]:
    proc = start(
        [
            "sim",
            "api",
            "--port",
            "0",
            "--followers",
            str(followers),
            "--seed",
            str(seed),
            "--callback-timeout",
            "5",
            *extra,
        ]
    )
    driver = SimDriver(proc.url)
    try:
        yield proc, driver
    finally:
        driver.close()
        proc.stop()


def serve(*args: str, env: dict[str, str] | None = None) -> Proc:
    return start(["serve", "--port", "0", *args], env=env, health="/healthz")

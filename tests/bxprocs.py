"""Real servers for tests, and the one place that starts them: the simulator (a `bankwx sim api`
process, or the app in a thread for tests that look inside its state) and the receiver (`bankwx
serve`), each on a free loopback port. The fixtures in conftest.py are built on these."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn
from bxtest import AES_KEY, APPID, ORIGINAL_ID, SECRET, TOKEN, Bankwx

from bankwx_cli.sim.app import SimApp
from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.sim.server import bind_socket
from bankwx_cli.sim.state import SimState


@dataclass
class Proc:
    """A `bankwx` process listening on a loopback port; its stderr in ``log`` when one was
    given (``stop()`` then returns what it wrote)."""

    popen: subprocess.Popen[str]
    url: str
    log: Path | None = None
    stderr_file: IO[str] | None = None

    def kill(self) -> str:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        return self._close()

    def stop(self) -> str:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                return self.kill()
        return self._close()

    def _close(self) -> str:
        if self.popen.stdout is not None and not self.popen.stdout.closed:
            self.popen.stdout.close()
        if self.stderr_file is not None:
            self.stderr_file.close()
        return "" if self.log is None else self.log.read_text(encoding="utf-8")


def _drain(stream: IO[str]) -> None:
    """Read what the child still prints, so its pipe never fills."""
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        pass


def start(
    args: list[str],
    env: dict[str, str] | None = None,
    health: str = "",
    *,
    clean: bool = False,
    environ: dict[str, str] | None = None,
    log: Path | None = None,
) -> Proc:
    """Start `bankwx ARGS` and wait for its `Listening on URL` line (and health path).
    The test's environment and ``env``; without its BANKWX_* settings when ``clean`` (a process
    that outlives the test); exactly ``environ`` when given. Stderr goes to ``log`` if given."""
    if environ is None:
        base = {k: v for k, v in os.environ.items() if not (clean and k.startswith("BANKWX_"))}
        environ = {**base, **(env or {})}
    stderr_file = None if log is None else log.open("w", encoding="utf-8")
    popen = subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if stderr_file is None else stderr_file,
        text=True,
        env=environ,
    )
    proc = Proc(popen, "", log, stderr_file)
    assert popen.stdout is not None
    line = popen.stdout.readline().strip()
    if not line.startswith("Listening on "):
        popen.kill()
        popen.wait(timeout=10)
        raise RuntimeError(f"bankwx {' '.join(args)} did not start: {line!r}: {proc._close()}")
    proc.url = line.removeprefix("Listening on ")
    threading.Thread(target=_drain, args=(popen.stdout,), daemon=True).start()
    if health:
        deadline = time.time() + 20
        while True:
            try:
                if httpx.get(proc.url + health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"bankwx {' '.join(args)} never answered {health}")
            time.sleep(0.05)
    return proc


def start_simulator(followers: int = 20, seed: int = 1, *extra: str, clean: bool = False) -> Proc:
    """`bankwx sim api` on a free port: the one way the tests start the simulator process."""
    args = ["sim", "api", "--port", "0", "--followers", str(followers), "--seed", str(seed)]
    return start([*args, "--callback-timeout", "5", *extra], clean=clean)


@contextmanager
def simulator(followers: int = 20, seed: int = 1, *extra: str) -> Iterator[tuple[Proc, SimDriver]]:
    """A simulator process of the test's own, stopped at the end: only for a test that needs
    options the `sim` fixture (and `sim_pool.use`) cannot give, such as ``extra`` arguments."""
    proc = start_simulator(followers, seed, *extra)
    driver = SimDriver(proc.url)
    try:
        yield proc, driver
    finally:
        driver.close()
        proc.stop()


def serve(*args: str, env: dict[str, str] | None = None) -> Proc:
    """`bankwx serve` on a free port, once /healthz answers: the one way to start the receiver."""
    return start(["serve", "--port", "0", *args], env=env, health="/healthz")


def start_receiver(
    bankwx: Bankwx,
    receivers: list[Proc],
    *args: str,
    name: str = "main",
    env: dict[str, str] | None = None,
) -> Proc:
    """Start `bankwx serve` and register the account's callback with the simulator."""
    proc = serve(*args, env=env)
    receivers.append(proc)
    result = bankwx("sim", "register", name, "--callback", f"{proc.url}/wx/{name}")
    assert result.exit_code == 0, result.output
    return proc


class ServerThread:
    """An ASGI app served by uvicorn in a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@dataclass(frozen=True)
class SimOptions:
    """Which simulator a test's `sim` fixture gives (override the `sim_options` fixture)."""

    followers: int = 30
    seed: int = 1
    retry_budget_s: str | None = None  # BANKWX_RETRY_BUDGET_S for the test, if set


class SimPool:
    """The simulators of one test session (per xdist worker): one `bankwx sim api` process per
    (followers, seed), and one app in a thread; each test resets the one it uses."""

    def __init__(self) -> None:
        self._procs: dict[tuple[int, int], Proc] = {}
        self._thread: tuple[SimApp, ServerThread] | None = None

    def process(self, followers: int, seed: int) -> Proc:
        key = (followers, seed)
        if key not in self._procs:
            self._procs[key] = start_simulator(followers, seed, clean=True)
        return self._procs[key]

    @contextmanager
    def use(self, options: SimOptions, monkeypatch: Any) -> Iterator[Sim]:
        """The simulator of this size, reset to its generated followers (no accounts, menus,
        log or faults), as the test's WeChat (BANKWX_API_BASE and BANKWX_SIM)."""
        proc = self.process(options.followers, options.seed)
        monkeypatch.setenv("BANKWX_API_BASE", proc.url)
        monkeypatch.setenv("BANKWX_SIM", proc.url)
        if options.retry_budget_s is not None:
            monkeypatch.setenv("BANKWX_RETRY_BUDGET_S", options.retry_budget_s)
        with Sim(proc.url) as sim:
            sim.reset(everything=True)
            yield sim

    def in_thread(self) -> tuple[SimApp, str]:
        if self._thread is None:
            app = SimApp(SimState())
            self._thread = (app, ServerThread(app).__enter__())
        return self._thread[0], self._thread[1].url

    def close(self) -> None:
        for proc in self._procs.values():
            proc.stop()
        self._procs.clear()
        if self._thread is not None:
            self._thread[1].__exit__()
            self._thread = None


class SimApi:
    """A client of a running simulator's WeChat API (``http``) with its control driver
    (``driver``), as the simulator and menu tests use it."""

    http: httpx.Client
    driver: SimDriver

    def token(self, appid: str = APPID, secret: str = SECRET) -> str:
        """A new access token from /cgi-bin/token (which ends the previous one)."""
        response = self.http.get(
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": appid, "secret": secret},
        )
        body = response.json()
        assert "access_token" in body, body
        return str(body["access_token"])

    def stable_token(self) -> str:
        """The stable access token (leaves the token bankwx holds alone)."""
        answer = self.http.post(
            "/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        ).json()
        return str(answer["access_token"])

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """Call a WeChat API with an access token; returns the JSON body (status must be 200)."""
        params = dict(kwargs.pop("params", {}))
        if token is not None:
            params["access_token"] = token
        response = self.http.request(method, path, params=params, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """WeChat's answer to one API call, made with a (stable) token of our own."""
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        response = self.http.request(
            method, path, params={"access_token": self.stable_token()}, content=content
        )
        return response.json()

    def menu(self) -> Any:
        """The simulator's menu/get answer."""
        return self.call("GET", "/cgi-bin/menu/get")

    def calls(self, path: str) -> list[dict[str, Any]]:
        """The API calls logged for this path."""
        return self.driver.log(kind="api", path=path)

    def register(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": "main",
            "appid": APPID,
            "secret": SECRET,
            "token": TOKEN,
            "aes_key": AES_KEY,
            "mode": "safe",
            "original_id": ORIGINAL_ID,
            "callback_url": None,
        }
        values.update(overrides)
        return self.driver.register_account(**values)

    def openid(self, appid: str = APPID) -> str:
        return self.driver.pick_openid(appid)


class Sim(SimApi, SimDriver):
    """A simulator process as a test's WeChat: its driver (this object, also ``.driver``) and
    its API over ``.http``."""

    def __init__(self, url: str) -> None:
        SimDriver.__init__(self, url)
        self.url = url
        self.driver = self
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=10)

    def close(self) -> None:
        self.http.close()
        SimDriver.close(self)


class SimProc:
    """A simulator process as the follower and tag tests use it: its API as a client calls it
    (one token, raw UTF-8 JSON) and its /sim/ endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, trust_env=False, timeout=60)
        self._token: str | None = None

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

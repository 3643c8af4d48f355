"""The callback receiver under load, path by path, against a ceiling and the strongest peer.

    make bench-callbacks                     # or: .venv/bin/python bench/callbacks/run.py
    .venv/bin/python bench/callbacks/run.py --paths default,mix --rounds 3 --duration 10

One run, with the same settings for every target and path (issues 9 and 19):

1. starts ``ceiling`` (bare ASGI on uvicorn answering ``success``) and ``peer`` (wechatpy's
   protocol work alone on bare ASGI, answering each path with that path's text), pinned to
   one core, and keeps them up for the whole run;
2. for each path of ``--paths`` -- ``keyword`` (a keyword rule's static reply), ``default``
   (text no rule matches: the default reply), ``click`` (a CLICK answered by a static click
   rule), ``subscribe`` (a follow answered by the welcome) and ``mix`` (60% default, 25%
   keyword, 10% click, 5% subscribe, interleaved) -- pre-generates ``--messages`` distinct
   safe-mode callbacks of that path with wechatpy, signed and encrypted before any clock
   starts; starts ``bankwx serve --workers 1`` on a fresh store of its own (safe mode, every
   rule and text of every path configured, de-duplication and the conversation log on)
   pinned to the same core; warms the three up, then drives them in turn, ``--rounds``
   rounds of ``--duration`` seconds, with wrk pinned to the other core, ``--connections``
   connections, one message per request; on the mix, bankwx goes on until it has taken
   ``--rss-after`` messages before its memory is read;
3. checks correctness apart from the timing, per path: sample replies decrypted and checked
   for every target (the path's text, addressed to the follower); during a drive of bankwx
   after the timed rounds (not timed itself), retries of answered messages and of fresh ones
   must get the stored reply (identical after decryption); after the path, its store's
   conversation log must hold every message sent exactly once, with the path's route and
   reply, masked;
4. prints, per path and target, requests/s, p50 and p99, the server's resident memory, the
   load generator's and the server's CPU share, and the ratios to the ceiling and to the
   peer; then the issue's targets.

Exit status 1 when a correctness check fails (the figures are still printed).
"""

from __future__ import annotations

import argparse
import array
import base64
import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import messages as m  # noqa: E402 - the sibling module, after the path is set
from wechatpy.crypto import WeChatCrypto  # noqa: E402

PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")
UVICORN = ["--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
SAMPLE_BASE = 8_000_000_000_000_000_000  # MsgIds of the correctness samples
RETRY_BASE = 8_100_000_000_000_000_000  # MsgIds of the fresh messages retried under load
PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
# bankwx-nr: bankwx with the reports' roll-ups off (BANKWX_BENCH_NO_ROLLUPS=1, a switch for
# benchmarks only), beside bankwx in the same run: what counting for reports costs the receiver
TARGETS = ("ceiling", "peer", "bankwx", "bankwx-nr")
PEER_APPS = {"ceiling": "peers:ceiling", "peer": "peers:wechatpy_peer"}
REFERENCE_LINES = 30_000  # lines the ceiling and the peer cycle through in one drive
GOAL = {"mix": 1.7}  # bankwx/peer throughput the issue asks for; 1.5 on the other paths
ROLLUPS_GOAL = 0.9  # bankwx / bankwx-nr: roll-ups cost the receiver under 10% (issue 18)


# --- processes ---------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from the distribution, installed with apt when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("wrk is missing: installing it with apt-get", file=sys.stderr)
    if subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=False).returncode:
        subprocess.run([*sudo, "apt-get", "update"], check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed; install it (apt-get install wrk).")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def core_busy(core: int) -> int:
    """Busy ticks of one CPU (all but idle and iowait), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(x) for x in line.split()[1:]]
            return sum(ticks) - ticks[3] - ticks[4]
    return 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    path: str = "/wx/main"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _wait_ready(url: str, popen: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if popen.poll() is not None:
            raise SystemExit(f"server exited with {popen.returncode} before answering")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not answer within 30 s")


def start_peer(name: str, app: str, core: int, work: Path) -> Server:
    port = free_port()
    popen = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(core),
            PYTHON,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *UVICORN,
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / f"{name}.log").open("wb"),
        env={
            **os.environ,
            "BENCH_TOKEN": m.TOKEN,
            "BENCH_AES_KEY": m.AES_KEY,
            "BENCH_APPID": m.APPID,
        },
    )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/", popen)
    return Server(name, popen, url)


def bankwx_env(
    work: Path, trial_lookup: bool = False, master_key: str | None = None
) -> dict[str, str]:
    """bankwx's environment, its store in work. The agents area's follower-state lookup is
    always registered (as in production) and finds nothing: the figures include its cost.
    With trial_lookup, the test-only area is on too: a second lookup, narrowed by a query of
    its own. A copy of a store needs the master key it was made with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
    if trial_lookup:
        env["BANKWX_TEST_ACTIONS"] = "1"
    env.update(
        BANKWX_DB=str(work / "bankwx.db"),
        BANKWX_KEY_FILE=str(work / "master.key"),
        BANKWX_MASTER_KEY=master_key or base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        BANKWX_OPERATOR="bench",
        BANKWX_API_BASE="http://127.0.0.1:9",  # nothing in the benchmark calls WeChat
        BANKWX_FORMAT="plain",
    )
    return env


def bankwx(env: dict[str, str], *args: str) -> None:
    """A bankwx command; of the checkout named by PYTHONPATH in env, if any (run from it: the
    current directory comes first on ``-m``'s path)."""
    tree = env.get("PYTHONPATH") or None
    done = subprocess.run(
        [PYTHON, "-m", "bankwx_cli", *args], env=env, capture_output=True, text=True,
        check=False, cwd=tree,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"bankwx {' '.join(args)} failed: {done.stderr.strip()}")


def prepare_store(env: dict[str, str]) -> None:
    """A fresh store with the benchmark's account, configured through the CLI for every path:
    a keyword rule (contains), a click rule (the menu key), the welcome and the default reply,
    each a static text."""
    bankwx(env, "init")
    bankwx(
        env,
        "account",
        "add",
        "main",
        "--appid",
        m.APPID,
        "--secret",
        "0" * 32,
        "--token",
        m.TOKEN,
        "--aes-key",
        m.AES_KEY,
        "--original-id",
        m.ORIGINAL_ID,
        "--mode",
        "safe",
    )
    bankwx(env, "keyword", "add", m.KEYWORD, "--match", "contains", "--reply-text", m.RULE_REPLY)
    bankwx(env, "keyword", "add", m.CLICK_KEY, "--match", "click", "--reply-text", m.CLICK_REPLY)
    bankwx(env, "account", "set", "main", "welcome", m.WELCOME)
    bankwx(env, "account", "set", "main", "default_reply", m.DEFAULT_REPLY)


def start_bankwx(
    env: dict[str, str], core: int | None, work: Path, workers: int = 1, name: str = "bankwx",
    extra: tuple[str, ...] = (), tree: Path | None = None, wrapper: tuple[str, ...] = (),
) -> Server:  # fmt: skip
    """`bankwx serve --workers N`, pinned to core (None: not pinned); of another checkout of
    the project when tree is given (with this interpreter and its libraries); run by wrapper
    (a command and its options, valgrind's for instance) when given. Its log: work/bankwx.log."""
    pin = [*(["taskset", "-c", str(core)] if core is not None else []), *wrapper]
    if tree is not None:
        env = {**env, "PYTHONPATH": str(tree)}  # before the installed (editable) copy
    popen = subprocess.Popen(
        [*pin, PYTHON, "-m", "bankwx_cli", "serve", "--port", "0", "--workers", str(workers),
         "--quiet", "--replay-window", "3600", *extra],
        stdout=subprocess.PIPE,
        stderr=(work / "bankwx.log").open("wb"),
        env=env,
        cwd=tree,
    )  # fmt: skip
    assert popen.stdout is not None
    line = popen.stdout.readline().decode().strip()
    if not line.startswith("Listening on "):
        popen.kill()
        raise SystemExit(f"bankwx serve did not start: {line!r}; see {work / 'bankwx.log'}")
    url = line.removeprefix("Listening on ")
    _wait_ready(url + "/healthz", popen)
    return Server(name, popen, url)


# --- load ----------------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    issued: int  # messages handed out
    loaded: int  # lines wrk loaded: more issued than loaded means some were sent twice
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    wrk_cpu: float  # share of one core
    server_cpu: float = 0.0
    other_cpu: float = 0.0  # the rest of the server core's busy time: others, interrupts

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@functools.lru_cache(maxsize=2)
def line_starts(requests: Path, size: int) -> array.array[int]:
    """Where each line of a requests file starts, in bytes (size: the file's, for the cache)."""
    starts = array.array("q")
    at = 0
    with requests.open("rb") as fh:
        for line in fh:
            starts.append(at)
            at += len(line)
    return starts


def drive(
    wrk: str,
    server: Server,
    requests: Path,
    offset: int,
    seconds: float,
    connections: int,
    core: int,
    server_core: int,
    limit: int = 0,
) -> Load:
    """One wrk run from line offset of the requests file (modulo its length), loading at most
    limit lines (0: to the end; wrk cycles through what it loaded); the figures of its Lua
    done(), and the CPU both sides used meanwhile.

    wrk loads the requests before it starts the clock and prints "Running ..." then (stdbuf
    makes that line leave at once): CPU is counted from there, so the loading is not counted
    as load. Formatting every line takes wrk about 15 us: a limit keeps it short.
    """
    starts = line_starts(requests, requests.stat().st_size)
    byte_offset = starts[offset % len(starts)]
    popen = subprocess.Popen(
        [
            "taskset", "-c", str(core), "stdbuf", "-oL", wrk, "-t1", f"-c{connections}",
            f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(HERE / "requests.lua"),
            server.url + server.path, "--", str(requests), str(byte_offset), "1", str(limit),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert popen.stdout is not None
    out = []
    started = time.monotonic()
    server_before = wrk_before = core_before = 0
    for line in popen.stdout:
        out.append(line)
        if line.startswith("Running "):
            started = time.monotonic()
            server_before, wrk_before = cpu_ticks(server.pid), cpu_ticks(popen.pid)
            core_before = core_busy(server_core)
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    server_ticks = cpu_ticks(server.pid) - server_before
    core_ticks = core_busy(server_core) - core_before
    wrk_seconds = usage.ru_utime + usage.ru_stime - wrk_before / TICKS
    found = next((x for x in out if x.startswith("BENCH ")), None)
    if popen.returncode or found is None:
        raise SystemExit(f"wrk failed ({popen.returncode}):\n{''.join(out)}")
    got = json.loads(found.removeprefix("BENCH "))
    return Load(
        requests=got["requests"],
        issued=got["issued"],
        loaded=got["loaded"],
        seconds=got["duration_us"] / 1e6,
        p50_ms=got["p50_us"] / 1000,
        p90_ms=got["p90_us"] / 1000,
        p99_ms=got["p99_us"] / 1000,
        max_ms=got["max_us"] / 1000,
        errors=got["errors"],
        wrk_cpu=wrk_seconds / wall,
        server_cpu=server_ticks / TICKS / wall,
        other_cpu=max(0, core_ticks - server_ticks) / TICKS / wall,
    )


# --- correctness -------------------------------------------------------------------------------


@dataclass
class Checks:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        (self.passed if ok else self.failed).append(what)


def _reply_ok(plain: str, msg: m.Message) -> bool:
    """A text reply with the message's path's text, addressed to its sender."""
    return (
        f"<![CDATA[{msg.reply}]]>" in plain
        and f"<ToUserName><![CDATA[{msg.openid}]]></ToUserName>" in plain
        and f"<FromUserName><![CDATA[{m.ORIGINAL_ID}]]></FromUserName>" in plain
    )


def post(http: httpx.Client, server: Server, query: str, body: str) -> httpx.Response:
    return http.post(f"{server.url}{server.path}?{query}", content=body.encode())


def check_samples(server: Server, checks: Checks, count: int, path: str) -> list[m.Message]:
    """Fresh messages of the path one by one: every reply decrypts to the path's answer.
    Returns the messages sent."""
    crypto = WeChatCrypto(m.TOKEN, m.AES_KEY, m.APPID)
    now = int(time.time())
    sent = [m.message(i, path, SAMPLE_BASE, now) for i in range(count)]
    good = 0
    with httpx.Client(timeout=10) as http:
        for msg in sent:
            answer = post(http, server, *next(m.fresh(msg, crypto)))
            if answer.status_code != 200:
                continue
            if server.name == "ceiling":
                good += answer.content == b"success"
            else:
                good += _reply_ok(m.open_reply(answer.content, crypto), msg)
    checks.check(
        good == count, f"{path}/{server.name}: {good}/{count} sample replies decrypted and right"
    )
    return sent


def bodies(requests: Path, indices: list[int]) -> dict[int, str]:
    """The bodies of some lines of the requests file."""
    wanted, found = set(indices), {}
    with requests.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i in wanted:
                found[i] = line.rstrip("\n").split("\t", 1)[1]
            if len(found) == len(wanted):
                break
    return found


class RetriesUnderLoad(threading.Thread):
    """While wrk drives bankwx on a path: retries of answered messages and of fresh ones, and
    pairs of simultaneous deliveries; every retry must get the stored reply."""

    def __init__(
        self, server: Server, path: str, at: int, requests: Path, answered: list[int],
        delay: float,
    ) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.server, self.path, self.at = server, path, at
        self.answered, self.delay = answered, delay
        self.bodies = bodies(requests, answered)
        self.results: list[tuple[bool, str]] = []
        self.fresh: list[m.Message] = []  # fresh messages sent (not from the requests file)
        self.retried: dict[str, int] = {}  # dedup key -> deliveries sent

    def run(self) -> None:
        time.sleep(self.delay)
        crypto = WeChatCrypto(m.TOKEN, m.AES_KEY, m.APPID)
        with httpx.Client(timeout=10) as http:
            self._replayed(http, crypto)
            self._fresh(http, crypto)
            self._simultaneous(crypto)

    def _replayed(self, http: httpx.Client, crypto: WeChatCrypto) -> None:
        ok = 0
        for index in self.answered:
            msg = m.message(index, self.path, at=self.at)
            query, body = m.request(
                m.encrypt_of(self.bodies[index]),
                int(time.time()),
                str(secrets.randbelow(10**9)),
                msg.openid,
            )
            answer = post(http, self.server, query, body)
            self.retried[msg.dedup_key] = 2
            ok += answer.status_code == 200 and _reply_ok(m.open_reply(answer.content, crypto), msg)
        self.results.append(
            (
                ok == len(self.answered),
                f"{self.path}/bankwx: {ok}/{len(self.answered)} retries of messages answered "
                "earlier in the load got the stored reply",
            )
        )

    def _fresh(self, http: httpx.Client, crypto: WeChatCrypto) -> None:
        ok = 0
        for i in range(20):
            msg = m.message(i, self.path, RETRY_BASE, int(time.time()))
            self.fresh.append(msg)
            deliveries = m.fresh(msg, crypto)
            first = post(http, self.server, *next(deliveries))
            retry = post(http, self.server, *next(deliveries))
            self.retried[msg.dedup_key] = 2
            if first.status_code == retry.status_code == 200:
                a, b = m.open_reply(first.content, crypto), m.open_reply(retry.content, crypto)
                ok += a == b and _reply_ok(a, msg)
        self.results.append(
            (
                ok == 20,
                f"{self.path}/bankwx: {ok}/20 retries during the load got the stored reply, "
                "identical after decryption",
            )
        )

    def _simultaneous(self, crypto: WeChatCrypto) -> None:
        ok = 0
        for i in range(20, 30):
            msg = m.message(i, self.path, RETRY_BASE, int(time.time()))
            self.fresh.append(msg)
            deliveries = m.fresh(msg, crypto)
            requests = [next(deliveries), next(deliveries)]
            replies: list[httpx.Response | None] = [None, None]
            gate = threading.Barrier(2)

            def send(
                k: int,
                requests: list[tuple[str, str]] = requests,
                replies: list[httpx.Response | None] = replies,
                gate: threading.Barrier = gate,
            ) -> None:
                with httpx.Client(timeout=10) as http:
                    gate.wait()
                    replies[k] = post(http, self.server, *requests[k])

            threads = [threading.Thread(target=send, args=(k,)) for k in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.retried[msg.dedup_key] = 2
            a, b = replies
            if a is not None and b is not None and a.status_code == b.status_code == 200:
                pa, pb = m.open_reply(a.content, crypto), m.open_reply(b.content, crypto)
                ok += pa == pb and _reply_ok(pa, msg)
        self.results.append(
            (
                ok == 10,
                f"{self.path}/bankwx: {ok}/10 pairs of simultaneous deliveries got one reply",
            )
        )


def _route_ok(kind: str, route: str) -> bool:
    if kind in ("keyword", "click"):
        return route.startswith("rule:")
    if kind == "default":
        return route == "default"
    return route.startswith("event:subscribe")


@dataclass
class Sent:
    """What bankwx was sent on one path, for the log check."""

    path: str
    at: int  # the requests file's timestamp (messages.message's at)
    count: int  # messages wrk issued
    pool: int  # messages in the requests file
    slack: int  # how many may be cut off in flight when a wrk run stops
    fresh: list[m.Message]  # samples and fresh retried messages
    retried: dict[str, int]  # dedup key -> deliveries


def check_log(db: Path, checks: Checks, sent: Sent) -> None:
    """The conversation log after a path: every message sent, once, with the path's route and
    reply, one outbound entry (logged in the message's row, or a row of its own), the right
    delivery count, masked."""
    path = sent.path
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT dedup_key, deliveries, state, reply, outcome, content, id, route, out_content "
        "FROM messages WHERE direction = 'in' AND account = 'main'"
    ).fetchall()
    out = {
        row[0]: (row[1], row[2])
        for row in conn.execute(
            "SELECT in_reply_to, count(*), max(content) FROM messages WHERE direction = 'out' "
            "GROUP BY in_reply_to"
        )
    }
    subscribed = conn.execute(
        "SELECT count(*) FROM follower_state WHERE account = 'main' AND subscribed = 1"
    ).fetchone()[0]
    conn.close()
    by_key: dict[str, tuple[Any, ...]] = {}
    duplicates = 0
    for row in rows:
        duplicates += row[0] in by_key
        by_key[row[0]] = row
    expected = {}
    for i in range(min(sent.count, sent.pool)):
        msg = m.message(i, path, at=sent.at)
        expected[msg.dedup_key] = msg
    fresh = {msg.dedup_key: msg for msg in sent.fresh}
    logged = set(by_key)
    missing = set(expected) - logged
    never_sent = logged - set(expected) - set(fresh)
    checks.check(duplicates == 0, f"{path}/bankwx: conversation log: {duplicates} duplicates")
    checks.check(not never_sent, f"{path}/bankwx: {len(never_sent)} logged messages never sent")
    checks.check(
        len(missing) <= sent.slack,
        f"{path}/bankwx: {len(expected) - len(missing)} of {len(expected)} messages sent by wrk "
        f"are in the log ({len(missing)} missing; up to {sent.slack} may be cut off in flight "
        "when wrk stops)",
    )
    checks.check(
        not set(fresh) - logged,
        f"{path}/bankwx: {len(set(fresh) & logged)} of the {len(fresh)} sample and retry "
        "messages are in the log",
    )
    known = {**expected, **fresh}
    wrong = []
    for key, (_, deliveries, state, reply, outcome, _, row_id, route, logged) in by_key.items():
        wanted = known.get(key)
        if wanted is None:
            continue
        count, text = out.get(row_id, (0, None))
        if logged is not None:
            count, text = count + 1, logged
        if not (
            state == "done"
            and outcome == "replied"
            and reply is not None  # sealed with the master key; retries check its text
            and _route_ok(wanted.kind, route)
            and count == 1
            and text == wanted.reply
            and deliveries == sent.retried.get(key, 1)
        ):
            wrong.append(key)
    checks.check(
        not wrong,
        f"{path}/bankwx: {len(wrong)} logged messages without their route, stored reply, one "
        f"outbound entry with the path's text, or the right delivery count (1, 2 retried)"
        + (f"; first: {wrong[0]} {by_key[wrong[0]][1:]}"[:300] if wrong else ""),
    )
    if any(not msg.is_event for msg in known.values()):
        unmasked = [r for r in rows if PHONE.search(r[5] or "")]
        phones = sum(1 for r in rows if "*" in (r[5] or ""))
        checks.check(
            not unmasked and phones > 0,
            f"{path}/bankwx: mobile numbers masked in the log ({phones} masked, "
            f"{len(unmasked)} not)",
        )
    followers = {msg.openid for key, msg in known.items() if key in logged and msg.is_event
                 and msg.kind == "subscribe"}  # fmt: skip
    if followers:
        checks.check(
            subscribed == len(followers),
            f"{path}/bankwx: {subscribed} followers marked subscribed, of {len(followers)} "
            "who followed",
        )
    if sent.count > sent.pool:
        checks.check(
            False,
            f"{path}/bankwx: wrk sent {sent.count} messages from a pool of {sent.pool}; "
            "raise --messages so that none repeats",
        )


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Figures:
    path: str
    name: str
    rounds: list[Load]
    rss_mb: float
    messages: int  # taken by the server on this path before its memory was read

    def median(self, metric: Callable[[Load], float]) -> float:
        return statistics.median(metric(load) for load in self.rounds)

    @property
    def rps(self) -> float:
        return self.median(lambda load: load.rps)


FASTEST = 12_000  # requests a second, above any bankwx round seen: what a pool must allow


def pool_size(args: argparse.Namespace, path: str) -> int:
    """Messages made for a path: --messages, or more when bankwx could take more at FASTEST a
    second (its warm-up, the rounds and the retries' drive: a message sent twice is a retry,
    not the path's first delivery); on the mix, enough for --rss-after too."""
    need = int((args.warmup + (args.rounds + 1) * args.duration) * FASTEST)
    if path == "mix":
        need = max(need, int(args.rss_after * 1.5))
    return max(int(args.messages), need)


def one_path(
    args: argparse.Namespace, wrk: str, number: int, path: str, work: Path,
    peers: dict[str, Server], store: Path | None, master_key: str, checks: Checks,
) -> list[Figures]:  # fmt: skip
    """One path: its messages, a bankwx on a store of its own, the three targets driven in
    turn round after round (so that a disturbance of the machine falls on all of them); the
    samples; bankwx stopped and its log checked."""
    where = work / path
    where.mkdir()
    requests = where / "requests.txt"
    started = time.monotonic()
    pool = pool_size(args, path)
    at = m.write_requests(requests, pool, path)
    say(f"run {number}: {path}: {pool} messages made in {time.monotonic() - started:.1f} s")
    servers = dict(peers)
    sent: dict[str, int] = dict.fromkeys(servers, 0)
    rounds: dict[str, list[Load]] = {}
    errors: dict[str, dict[str, int]] = {}
    side: RetriesUnderLoad | None = None
    rss: dict[str, float] = {}
    samples: list[m.Message] = []
    warm: dict[str, list[Load]] = {}
    twice: list[int] = []  # bankwx drives that ran past the lines wrk loaded
    drives = 0

    def load(name: str, seconds: float) -> Load:
        """One drive. wrk loads only the lines it may need: the references (which neither
        de-duplicate nor log) cycle through REFERENCE_LINES; bankwx gets twice what its
        fastest round so far (at first: the ceiling's) would take, and never a line twice."""
        nonlocal drives
        if name.startswith("bankwx"):
            done = [r.rps for r in rounds.get(name, [])] + [r.rps for r in warm.get(name, [])]
            rate = max(done) if done else max([r.rps for r in warm.get("ceiling", [])] or [0])
            limit = min(pool - sent[name], int(rate * seconds * 2) + 5000) if rate else 0
            limit = max(limit, 1000) if rate else 0
        else:
            limit = REFERENCE_LINES
        got = drive(wrk, servers[name], requests, sent[name], seconds, args.connections,
                    args.load_core, args.server_core, limit)  # fmt: skip
        sent[name] += got.issued
        drives += name == "bankwx"
        if name.startswith("bankwx") and got.issued > got.loaded:
            twice.append(got.issued - got.loaded)
        for kind, count in got.errors.items():
            errors.setdefault(name, {}).setdefault(kind, 0)
            errors[name][kind] += count
        return got

    try:
        if store is not None:  # a fresh store of the path's own: a copy of the one prepared
            for part in store.parent.iterdir():
                shutil.copy2(part, where / part.name)
            env = bankwx_env(where, args.trial_lookup, master_key)
            if "bankwx" in args.targets:
                servers["bankwx"] = start_bankwx(env, args.server_core, where)
                sent["bankwx"] = 0
            if "bankwx-nr" in args.targets:
                (where / "nr").mkdir()
                for part in store.parent.iterdir():
                    shutil.copy2(part, where / "nr" / part.name)
                off = {**bankwx_env(where / "nr", args.trial_lookup, master_key),
                       "BANKWX_BENCH_NO_ROLLUPS": "1"}  # fmt: skip
                servers["bankwx-nr"] = start_bankwx(off, args.server_core, where / "nr",
                                                    name="bankwx-nr")  # fmt: skip
                sent["bankwx-nr"] = 0
        for name in servers:
            rounds[name] = []
            warm[name] = [load(name, args.warmup)]
        for round_no in range(args.rounds):
            for name in servers:
                rounds[name].append(load(name, args.duration))
            say(f"run {number}: {path}: round {round_no + 1}: " + ", ".join(
                f"{name} {rounds[name][-1].rps:.0f}/s" for name in servers))  # fmt: skip
        if "bankwx" in servers:  # the retries, under a load of their own: not timed (their
            # requests and checks would slow the round they fell in, and bankwx's alone)
            step = max(1, sent["bankwx"] // 20)
            answered = list(range(0, sent["bankwx"], step))[:20]
            side = RetriesUnderLoad(servers["bankwx"], path, at, requests, answered,
                                    args.duration / 3)  # fmt: skip
            side.start()
            load("bankwx", args.duration)
            side.join()
        if path == "mix" and "bankwx" in servers:
            rate = statistics.median(r.rps for r in rounds["bankwx"])
            while sent["bankwx"] < args.rss_after:  # in steps: the machine's speed drifts
                wanted = (args.rss_after - sent["bankwx"]) / max(rate, 1.0)
                rate = load("bankwx", max(1.0, 0.8 * wanted + 0.5)).rps
        time.sleep(0.5)
        for name, server in servers.items():
            rss[name] = rss_mb(server.pid)
            got = check_samples(server, checks, args.samples, path)
            if name == "bankwx":
                samples = got
    finally:
        for name in ("bankwx", "bankwx-nr"):
            if name in servers:
                servers[name].stop()
    figures = [Figures(path, name, rounds[name], rss[name], sent[name]) for name in servers]
    for name in servers:
        bad = {kind: n for kind, n in errors.get(name, {}).items() if n}
        checks.check(
            not bad, f"{path}/{name}: every request answered 200 in time (wrk errors: {bad})"
        )
    if "bankwx" in servers:
        checks.check(
            not twice,
            f"{path}/bankwx: wrk never ran past the lines it loaded ({sum(twice)} sent twice)",
        )
        if path == "mix":
            checks.check(
                sent["bankwx"] >= args.rss_after,
                f"mix/bankwx: {sent['bankwx']} messages taken before its memory was read",
            )
        for ok, what in side.results if side else []:
            checks.check(ok, what)
        got_sent = Sent(
            path, at, sent["bankwx"], pool, drives * args.connections,
            samples + (side.fresh if side else []), side.retried if side else {},
        )  # fmt: skip
        check_log(where / "bankwx.db", checks, got_sent)
    if not args.keep:
        requests.unlink()
    return figures


def one_run(args: argparse.Namespace, wrk: str, number: int) -> tuple[list[Figures], Checks]:
    """The ceiling and the peer, up for the whole run; then each path in turn."""
    work = Path(tempfile.mkdtemp(prefix="bankwx-bench-"))
    checks = Checks()
    peers: dict[str, Server] = {}
    figures: list[Figures] = []
    master_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    store = None
    if {"bankwx", "bankwx-nr"} & set(args.targets):  # prepared once, copied for each path
        (work / "store").mkdir()
        prepare_store(bankwx_env(work / "store", args.trial_lookup, master_key))
        store = work / "store" / "bankwx.db"
    try:
        for name, app in PEER_APPS.items():
            if name in args.targets:
                peers[name] = start_peer(name, app, args.server_core, work)
        for path in args.paths:
            figures += one_path(args, wrk, number, path, work, peers, store, master_key, checks)
    finally:
        for server in peers.values():
            server.stop()
    if args.keep:
        say(f"run {number}: kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return figures, checks


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(figures: list[Figures], args: argparse.Namespace) -> str:
    lines = [
        f"{args.connections} connections; server on core {args.server_core}, wrk on core "
        f"{args.load_core}; median of {args.rounds} rounds of {args.duration:g} s per target "
        "and path",
        f"{'path':<9} {'target':<9} {'req/s':>7} {'(min-max)':>13} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'RSS MB':>7} {'msgs':>7} {'wrk CPU':>7} {'srv CPU':>7} {'other':>6} "
        f"{'x ceil':>6} {'x peer':>6}",
    ]
    goals = []
    for path in args.paths:
        by = {f.name: f for f in figures if f.path == path}
        ceiling, peer = by.get("ceiling"), by.get("peer")
        for f in by.values():
            spread = f"{min(r.rps for r in f.rounds):.0f}-{max(r.rps for r in f.rounds):.0f}"
            x_ceiling = f"{f.rps / ceiling.rps:.2f}" if ceiling else "-"
            x_peer = f"{f.rps / peer.rps:.2f}" if peer else "-"
            lines.append(
                f"{path:<9} {f.name:<9} {f.rps:>7.0f} {spread:>13} "
                f"{f.median(lambda r: r.p50_ms):>7.2f} {f.median(lambda r: r.p99_ms):>7.2f} "
                f"{f.rss_mb:>7.1f} {f.messages:>7} {f.median(lambda r: r.wrk_cpu):>7.0%} "
                f"{f.median(lambda r: r.server_cpu):>7.0%} "
                f"{f.median(lambda r: r.other_cpu):>6.0%} {x_ceiling:>6} {x_peer:>6}"
            )
        bx = by.get("bankwx")
        if bx and peer:
            p99, peer_p99 = bx.median(lambda r: r.p99_ms), peer.median(lambda r: r.p99_ms)
            goal = GOAL.get(path, 1.5)
            # round by round (each round drives the targets one after the other): how far
            # the machine's drift moved the ratio the medians give
            paired = ", ".join(
                f"{b.rps / p.rps:.2f}" for b, p in zip(bx.rounds, peer.rounds, strict=False)
            )
            goals.append(
                f"  {path:<9} bankwx/peer {bx.rps / peer.rps:.2f} (>= {goal:.1f}: "
                f"{'met' if bx.rps / peer.rps >= goal else 'not met'}; by round {paired}); "
                f"p99 {p99:.2f} ms, peer {peer_p99:.2f} ms "
                f"({'met' if p99 <= peer_p99 else 'not met'})"
            )
        off = by.get("bankwx-nr")
        if bx and off:
            goals.append(
                f"  {path:<9} roll-ups on/off {bx.rps / off.rps:.2f} (>= {ROLLUPS_GOAL}: "
                f"{'met' if bx.rps / off.rps >= ROLLUPS_GOAL else 'not met'})"
            )
        if bx and path == "mix":
            goals.append(
                f"  mix       RSS {bx.rss_mb:.1f} MB after {bx.messages} messages (< 150: "
                f"{'met' if bx.rss_mb < 150 else 'not met'})"
            )
    if goals:
        lines += ["targets (issues 19 and 18):", *goals]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--paths",
        default=",".join(m.PATHS),
        help=f"comma-separated, in this order: {','.join(m.PATHS)} (default: all)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=300_000,
        help="distinct messages made per path (more when the rounds could take more)",
    )
    parser.add_argument("--duration", type=float, default=5, help="seconds of one round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per target and path")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per target")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rss-after",
        type=int,
        default=100_000,
        help="messages bankwx takes on the mix before its memory is read",
    )
    parser.add_argument("--samples", type=int, default=50, help="replies checked per target")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--load-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--trial-lookup",
        action="store_true",
        help="also the test-only area's follower-state lookup (BANKWX_TEST_ACTIONS=1)",
    )
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    args.paths = [p for p in args.paths.split(",") if p]
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = [p for p in args.paths if p not in m.PATHS]
    unknown += [t for t in args.targets if t not in TARGETS]
    if unknown or not args.paths or not args.targets:
        parser.error(f"--paths takes {','.join(m.PATHS)}; --targets takes {','.join(TARGETS)}")
    if args.rounds < 1 or args.duration < 1 or args.warmup < 1 or args.messages < 1000:
        parser.error("--rounds must be 1 or more, --duration and --warmup 1 s or more, "
                     "--messages 1000 or more")  # fmt: skip
    wrk = ensure_wrk()
    os.sched_setaffinity(0, {args.load_core})  # this script stays off the server's core
    results: list[dict[str, Any]] = []
    failed = False
    for number in range(1, args.runs + 1):
        started = time.monotonic()
        figures, checks = one_run(args, wrk, number)
        print(f"\nrun {number} ({time.monotonic() - started:.0f} s)\n{table(figures, args)}")
        for what in checks.passed:
            print(f"  ok    {what}")
        for what in checks.failed:
            print(f"  FAIL  {what}")
        sys.stdout.flush()
        failed = failed or bool(checks.failed)
        results.append(
            {
                "run": number,
                "figures": [
                    {
                        "path": f.path,
                        "target": f.name,
                        "rps": f.rps,
                        "p50_ms": f.median(lambda r: r.p50_ms),
                        "p99_ms": f.median(lambda r: r.p99_ms),
                        "rss_mb": f.rss_mb,
                        "messages": f.messages,
                        "rounds": [{"rps": r.rps, **r.__dict__} for r in f.rounds],
                    }
                    for f in figures
                ],
                "failed": checks.failed,
            }
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: alerts (issue 17), parts (a), (b) and (c), each against the simulator's
template-send ceiling measured in the same run by a bare client with the same concurrency.

    make bench-alerts                        # the issue's sizes (100,000 followers)
    make bench-alerts ARGS="--scale small"   # a check: under 2 minutes

One simulator (`bankwx sim api`, quotas raised, every answer delayed ``--latency-ms``) and one
store (the account's template budget raised above what the sending threads reach; the
callbacks benchmark's keyword, click, welcome and default reply; an alert source, a rule for
``transaction`` events on the simulator's transaction template, ``--bound`` followers bound
to a customer each), served by ``bankwx serve --workers 1 --send-threads 16`` (its
dispatcher's sending threads):

- (a) events at a steady rate (``--load`` times the ceiling; default 0.5, the issue's target)
  through ``POST /api/v1/alerts`` in batches of 500 to bound customers for ``--seconds``:
  events a second (every event's template accepted by WeChat, from the first post to the last
  acceptance), event-to-send p50 and p99 (``bankwx alert status``: intake commit to WeChat's
  acceptance), the server's peak resident memory. Targets: at least 0.5 of the ceiling (16
  threads, the serve dispatcher's), p99 under 2 s.
- (c) callbacks (the callbacks benchmark's ``mix``, signed and encrypted beforehand) paced to
  ``--callback-rate`` a second by wrk (each connection waits connections/rate between
  requests), for ``--callback-seconds``: p50 and p99 without other load, then again with
  (a)'s load running. Target: with it, p99 under 50 ms.
- (b) the outbox benchmark's template broadcast to every follower (``--followers``), expanded
  with the broadcast lane paused and sent by ``bankwx outbox run`` (8 threads) beside the
  serve's dispatcher (16), with ``--trickle`` alerts a second posted to the intake meanwhile:
  broadcast sends a second against the ceiling of 24 threads (both senders'), ``outbox run``'s
  peak memory,
  the alerts' p50 and p99. Targets: at least 0.5 of the ceiling, under 300 MB, p99 under 2 s.

Each ceiling is measured before and after bankwx's part; ratios are to the mean of the two.
The helpers come from bench/outbox/bench_outbox.py (simulator, ceiling client, `outbox run`)
and bench/callbacks/run.py (store, `bankwx serve`, wrk). Exit status 1 when a check fails
(an alert or broadcast message missing or sent twice); the figures are still printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import requests

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path[:0] = [str(BENCH / "outbox"), str(BENCH / "callbacks")]

import bench_outbox as ob  # noqa: E402 - the sibling benchmarks, after the path is set
import messages as m  # noqa: E402
import run as cb  # noqa: E402

from bankwx_cli.models.bank import Binding  # noqa: E402
from bankwx_cli.sim.api_templates import template_id  # noqa: E402
from bankwx_cli.storage import open_store  # noqa: E402

SEND_THREADS = 16  # `bankwx serve --send-threads`: its dispatcher's sending threads
BATCH = 500  # events a POST in (a), the Contract's largest batch
FIELDS = (
    "first=您{card|mask}的卡发生一笔交易",
    "time={occurred_at|time}",
    "amount={amount_fen|yuan}",
    "remark=如非本人操作，请致电客服",
)
SCALES: dict[str, dict[str, Any]] = {
    "full": {
        "followers": 100_000,
        "seconds": 60.0,
        "callback_seconds": 30.0,
        "ceiling_sends": 6000,
        "bound": 2000,
    },
    "small": {
        "followers": 2000,
        "seconds": 10.0,
        "callback_seconds": 5.0,
        "ceiling_sends": 600,
        "bound": 200,
    },
}
P99_TARGET_MS = 2000.0
CALLBACK_P99_TARGET_MS = 50.0
RATIO_TARGET = 0.5
SENDER_RSS_TARGET_MB = 300.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bankwx(env: dict[str, str], *args: str, operator: str = "bench") -> str:
    return str(ob.run(env, *args, operator=operator))


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def delivered_count(sim: str) -> int:
    return int(requests.get(f"{sim}/sim/state", timeout=30).json()["delivered"])


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- alert load -------------------------------------------------------------------------------


@dataclass
class AlertLoad:
    """Alert events posted to the intake at a steady rate: ``batch`` events every
    batch/rate seconds (a POST may overlap the next: up to 4 in flight), to the bound
    customers in turn, until ``count`` are posted or ``stop`` is set."""

    url: str
    key: str
    rate: float
    batch: int
    count: int
    customers: list[str]
    prefix: str
    stop: threading.Event = field(default_factory=threading.Event)
    posted: int = 0
    accepted: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_post: float = 0.0
    lag_s: float = 0.0  # the most a batch left after its scheduled time

    def event(self, n: int) -> dict[str, Any]:
        return {
            "event_id": f"{self.prefix}{n}",
            "type": "transaction",
            "customer_id": self.customers[n % len(self.customers)],
            "occurred_at": iso_now(),
            "data": {"amount_fen": 10_000 + n, "card": "6222020000001234"},
        }

    def run(self) -> None:
        lock = threading.Lock()
        slots = threading.Semaphore(4)

        def post(client: httpx.Client, events: list[dict[str, Any]]) -> None:
            try:
                body = json.dumps({"events": events}, ensure_ascii=False).encode()
                answer = client.post(
                    self.url + "/api/v1/alerts",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {self.key}",
                        "Content-Type": "application/json",
                    },
                )
                if answer.status_code != 200:
                    with lock:
                        self.errors[f"HTTP {answer.status_code}"] += len(events)
                    return
                got = Counter(r["status"] for r in answer.json()["results"])
                with lock:
                    self.accepted += got.pop("accepted", 0)
                    self.errors.update(got)
            except httpx.HTTPError as exc:
                with lock:
                    self.errors[type(exc).__name__] += len(events)
            finally:
                slots.release()

        interval = self.batch / self.rate
        workers: list[threading.Thread] = []
        with httpx.Client(timeout=60, trust_env=False) as client:
            self.first_post = started = time.perf_counter()
            n = 0
            while n < self.count and not self.stop.is_set():
                due = started + (n // self.batch) * interval
                pause = due - time.perf_counter()
                if pause > 0 and self.stop.wait(pause):
                    break
                self.lag_s = max(self.lag_s, time.perf_counter() - due)
                size = min(self.batch, self.count - n)
                events = [self.event(i) for i in range(n, n + size)]
                slots.acquire()
                worker = threading.Thread(target=post, args=(client, events), daemon=True)
                worker.start()
                workers.append(worker)
                n += size
                self.posted = n
            for worker in workers:
                worker.join()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"alerts-{self.prefix}", daemon=True)
        thread.start()
        return thread


def wait_delivered(sim: str, target: int, timeout: float) -> float:
    """Wait until the simulator has recorded target deliveries; the moment it had."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if delivered_count(sim) >= target:
            return time.perf_counter()
        time.sleep(0.05)
    raise SystemExit(f"the simulator did not reach {target} deliveries within {timeout:.0f} s")


def latency(env: dict[str, str], since: str) -> dict[str, Any]:
    """`bankwx alert status --since` as JSON: counts and latency_p50_ms/latency_p99_ms."""
    found: dict[str, Any] = json.loads(
        bankwx(env, "alert", "status", "--since", since, "--format", "json")
    )
    return found


# --- parts --------------------------------------------------------------------------------------


@dataclass
class Row:
    part: str
    what: str
    rate: float | None = None  # per second
    ceiling: float | None = None  # the ceiling's mean, per second
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mb: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.rate / self.ceiling if self.rate and self.ceiling else None


@dataclass
class Setup:
    args: argparse.Namespace
    sim: str
    env: dict[str, str]
    work: Path
    key: str
    openids: list[str]  # every follower in the simulator
    customers: list[str]  # bound, one follower each (openids[:bound])
    alert_template: dict[str, Any]  # a rendered alert: template_id and data
    server: cb.Server | None = None
    failed: list[str] = field(default_factory=list)


def ceiling(s: Setup, template: dict[str, Any], threads: int, sends: int, tag: str) -> float:
    openids = [s.openids[i % len(s.openids)] for i in range(sends)]
    found = float(ob.ceiling(s.sim, template, openids, threads, tag))
    say(f"ceiling {tag} (bare client, {threads} threads, {sends} sends): {found:,.0f}/s")
    return found


def part_a(s: Setup, rate: float, prefix: str, count: int | None = None) -> tuple[AlertLoad, float]:
    """(a)'s load at rate, count events (default: --seconds' worth), until every template was
    accepted; (the load, seconds from the first post to the last acceptance)."""
    assert s.server is not None
    load = AlertLoad(
        s.server.url,
        s.key,
        rate,
        s.args.batch,
        count or max(1, round(rate * s.args.seconds)),
        s.customers,
        prefix,
    )
    base = delivered_count(s.sim)
    load.start().join()
    done = wait_delivered(s.sim, base + load.accepted, timeout=max(120.0, 4 * s.args.seconds))
    return load, done - load.first_post


def run_a(s: Setup, rate: float, top: float) -> Row:
    assert s.server is not None
    since = iso_now()
    load, wall = part_a(s, rate, "a")
    status = latency(s.env, since)
    if load.errors or load.accepted != load.posted:
        s.failed.append(f"(a): {load.posted} posted, {load.accepted} accepted, {dict(load.errors)}")
    if status["sent_wechat"] != load.accepted:
        s.failed.append(f"(a): {status['sent_wechat']} sent to WeChat of {load.accepted}")
    events_rate = load.accepted / wall
    p99 = status["latency_p99_ms"]
    say(
        f"(a) {load.accepted} events offered at {rate:,.0f}/s: {events_rate:,.0f}/s, p50 "
        f"{status['latency_p50_ms']} ms, p99 {p99} ms, post lag at most {load.lag_s:.2f} s"
    )
    row = Row(
        "a",
        f"alerts via the intake, offered {rate:,.0f}/s",
        events_rate,
        top,
        status["latency_p50_ms"],
        p99,
        peak_rss_mb(s.server.pid),
        "ratio >= 0.50, p99 < 2 s",
    )
    row.met = (row.ratio or 0) >= RATIO_TARGET and p99 is not None and p99 < P99_TARGET_MS
    return row


def run_c(s: Setup, wrk: str, rate_a: float) -> list[Row]:
    """Callbacks paced to --callback-rate: alone, then with (a)'s load."""
    assert s.server is not None
    seconds = s.args.callback_seconds
    per_drive = int(s.args.callback_rate * seconds * 1.2) + s.args.connections
    requests_file = s.work / "callbacks.txt"
    made = time.perf_counter()
    m.write_requests(requests_file, 2 * per_drive, "mix")
    say(f"(c) {2 * per_drive} callbacks made in {time.perf_counter() - made:.1f} s")
    pause_ms = max(1, round(s.args.connections * 1000 / s.args.callback_rate))
    # wrk runs bench/callbacks/requests.lua from cb.HERE: a folder of ours holds one that
    # loads it and adds wrk's delay() hook (the pacing), so that cb.drive is used unchanged
    paced = s.work / "paced"
    paced.mkdir(exist_ok=True)
    original = (BENCH / "callbacks" / "requests.lua").as_posix()
    (paced / "requests.lua").write_text(
        f'dofile("{original}")\nfunction delay() return {pause_ms} end\n', encoding="utf-8"
    )
    rows = []
    saved = cb.HERE
    cb.HERE = paced
    try:
        for number, with_load in enumerate((False, True)):
            load: AlertLoad | None = None
            if with_load:  # (a)'s load, until the callbacks are done
                load = AlertLoad(s.server.url, s.key, rate_a, s.args.batch, 10**9, s.customers, "c")
                base = delivered_count(s.sim)
                thread = load.start()
                time.sleep(min(2.0, seconds / 4))  # under way first
            got = cb.drive(
                wrk,
                s.server,
                requests_file,
                number * per_drive,
                seconds,
                s.args.connections,
                s.args.load_core,
                s.args.server_core,
                limit=per_drive,
            )
            if load is not None:
                load.stop.set()
                thread.join()
                # its alerts sent before anything else is measured
                wait_delivered(s.sim, base + load.accepted, timeout=120)
                if load.errors:
                    s.failed.append(f"(c) alerts: {load.accepted} accepted, {dict(load.errors)}")
            if got.errors and any(got.errors.values()):
                s.failed.append(f"(c) callbacks: errors {got.errors}")
            what = "callbacks with (a)'s load" if with_load else "callbacks alone"
            say(f"(c) {what}: {got.rps:,.0f}/s, p50 {got.p50_ms:.2f} ms, p99 {got.p99_ms:.2f} ms")
            row = Row(
                "c",
                f"{what}, paced {s.args.callback_rate:,.0f}/s",
                got.rps,
                None,
                got.p50_ms,
                got.p99_ms,
                peak_rss_mb(s.server.pid),
            )
            if with_load:
                row.target = "p99 < 50 ms"
                row.met = got.p99_ms < CALLBACK_P99_TARGET_MS
            rows.append(row)
    finally:
        cb.HERE = saved
    return rows


def run_b(s: Setup) -> list[Row]:
    """The outbox benchmark's broadcast to every follower, with --trickle alerts a second."""
    assert s.server is not None
    env = s.env
    templates = json.loads(bankwx(env, "template", "list", "--format", "json"))
    tid = templates[0]["template_id"]  # as the outbox benchmark's
    shown = json.loads(bankwx(env, "template", "show", tid, "--format", "json"))
    data = {name: {"value": "测试"} for name in shown["fields"]}
    created = json.loads(
        bankwx(
            env,
            "broadcast",
            "create",
            "--template",
            tid,
            "--data",
            json.dumps(data, ensure_ascii=False),
            "--to-all",
            "--title",
            "bench",
            "--format",
            "json",
        )
    )
    number = str(created["id"])
    bankwx(env, "broadcast", "submit", number)
    bankwx(env, "broadcast", "approve", number, operator="checker")
    bankwx(env, "outbox", "pause", "--lane", "broadcast")
    started = time.perf_counter()
    bankwx(env, "broadcast", "send", number, "--yes")  # expands; sends nothing: paused
    say(
        f"(b) broadcast {number} to {len(s.openids):,} followers expanded in "
        f"{time.perf_counter() - started:.1f} s"
    )
    units = json.loads(
        bankwx(
            env,
            "outbox",
            "list",
            "--state",
            "pending",
            "--lane",
            "broadcast",
            "--limit",
            "1",
            "--format",
            "json",
        )
    )
    template = {k: v for k, v in units[0]["payload"].items() if k != "touser"}
    threads = ob._threads() + s.args.send_threads
    sends = len(s.openids)
    before = ceiling(s, template, threads, sends, "b-before")
    base = delivered_count(s.sim)
    since = iso_now()
    trickle = AlertLoad(
        s.server.url,
        s.key,
        s.args.trickle,
        max(1, round(s.args.trickle / 10)),
        10**9,
        s.customers,
        "b",
    )
    trickling = trickle.start()
    bankwx(env, "outbox", "resume")
    report, wall, rss, cpu = ob.outbox_run(env)
    trickle.stop.set()
    trickling.join()
    wait_delivered(s.sim, base + sends + trickle.accepted, timeout=120)
    status = latency(env, since)
    after = ceiling(s, template, threads, sends, "b-after")
    state = json.loads(bankwx(env, "broadcast", "show", number, "--format", "json"))
    top = (before + after) / 2
    broadcast_rate = sends / report["seconds"]
    say(
        f"(b) outbox run: {report['sent']:,} sent in {report['seconds']:.1f} s ({wall:.1f} s "
        f"with start-up; the serve's dispatcher sent the rest), CPU {cpu:.1f} s; broadcast "
        f"{state['state']}; {trickle.accepted} alerts meanwhile"
    )
    if state["state"] != "sent":
        s.failed.append(f"(b): broadcast {number} ended {state['state']}")
    if trickle.errors or status["sent_wechat"] != trickle.accepted:
        s.failed.append(
            f"(b): alerts {trickle.accepted} accepted, {status['sent_wechat']} sent, "
            f"{dict(trickle.errors)}"
        )
    p99 = status["latency_p99_ms"]
    rows = [
        Row(
            "b",
            f"broadcast to {sends:,} ({threads} threads)",
            broadcast_rate,
            top,
            None,
            None,
            rss,
            "ratio >= 0.50, sender < 300 MB",
            broadcast_rate / top >= RATIO_TARGET and rss < SENDER_RSS_TARGET_MB,
        ),
        Row(
            "b",
            f"alerts meanwhile, {s.args.trickle:g}/s",
            trickle.accepted / wall,
            None,
            status["latency_p50_ms"],
            p99,
            peak_rss_mb(s.server.pid),
            "p99 < 2 s",
            p99 is not None and p99 < P99_TARGET_MS,
        ),
    ]
    return rows


# --- set-up -------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, sim: str, work: Path) -> Setup:
    env = cb.bankwx_env(work)
    env["BANKWX_API_BASE"] = sim
    cb.prepare_store(env)  # the callbacks' account, rules, welcome and default reply
    bankwx(
        env,
        "account",
        "update",
        "main",
        "--secret",
        ob.SECRET,
        "--rate",
        f"message/template/send={ob.RATE}",
    )
    bankwx(env, "operator", "add", "checker", "--role", "approver")
    bankwx(env, "follower", "sync")
    bankwx(env, "template", "sync")
    key = json.loads(bankwx(env, "alert", "source", "add", "core", "--format", "json"))["key"]
    tid = template_id(ob.APPID, "transaction")
    rule = ["alert", "rule", "add", "transaction", "--template", tid, "--label", "交易提醒"]
    for one in FIELDS:
        rule += ["--field", one]
    bankwx(env, *rule)
    openids = ob._followers(sim, args.followers)
    bound = min(args.bound, len(openids))
    customers = [f"B{i:06d}" for i in range(bound)]
    store = open_store(Path(env["BANKWX_DB"]))
    try:
        with store.transaction():
            for openid, customer in zip(openids, customers, strict=False):
                store.bindings.add(Binding("main", openid, customer, "1234", iso_now(), "bench"))
    finally:
        store.close()
    sample = AlertLoad("", "", 1, 1, 1, customers, "sample").event(0)
    event_file = work / "event.json"
    event_file.write_text(json.dumps(sample, ensure_ascii=False), encoding="utf-8")
    rendered = json.loads(
        bankwx(
            env,
            "alert",
            "rule",
            "test",
            "transaction",
            "--event",
            str(event_file),
            "--format",
            "json",
        )
    )
    template = {"template_id": rendered["template_id"], "data": rendered["data"]}
    return Setup(args, sim, env, work, key, openids, customers, template)


def table(rows: list[Row]) -> str:
    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        f"{'part':<4} {'what':<40} {'/s':>8} {'ceiling/s':>9} {'ratio':>5} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'RSS MB':>7}  target",
    ]
    for r in rows:
        verdict = "" if r.met is None else (" met" if r.met else " NOT MET")
        lines.append(
            f"{r.part:<4} {r.what:<40} {num(r.rate, ',.0f'):>8} {num(r.ceiling, ',.0f'):>9} "
            f"{num(r.ratio, '.2f'):>5} {num(r.p50_ms, '.1f'):>8} {num(r.p99_ms, '.1f'):>8} "
            f"{num(r.rss_mb, '.0f'):>7}  {r.target}{verdict}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        choices=tuple(SCALES),
        default="full",
        help="full: the issue's sizes; small: a check in under 2 minutes",
    )
    parser.add_argument("--followers", type=int, help="followers in the simulator: (b)'s size")
    parser.add_argument("--bound", type=int, help="followers bound to a customer: (a)'s")
    parser.add_argument("--seconds", type=float, help="(a)'s duration")
    parser.add_argument(
        "--load",
        type=float,
        default=0.5,
        help="(a)'s steady rate as a share of its ceiling (default 0.5)",
    )
    parser.add_argument("--batch", type=int, default=BATCH, help="events a POST in (a)")
    parser.add_argument(
        "--send-threads", type=int, default=SEND_THREADS,
        help="bankwx serve --send-threads, and the bare client's threads in (a)",
    )  # fmt: skip
    parser.add_argument("--ceiling-sends", type=int, help="sends of (a)'s ceiling client")
    parser.add_argument("--callback-rate", type=float, default=1000.0)
    parser.add_argument("--callback-seconds", type=float)
    parser.add_argument("--connections", type=int, default=20, help="wrk's, in (c)")
    parser.add_argument("--trickle", type=float, default=50.0, help="alerts a second in (b)")
    parser.add_argument("--latency-ms", type=int, default=20, help="the simulator's answers")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1, help="wrk's core")
    parser.add_argument("--parts", default="a,c,b", help="which parts, comma-separated")
    args = parser.parse_args()
    for name, value in SCALES[args.scale].items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    wrk = cb.ensure_wrk() if "c" in parts else ""

    sim, sim_process = ob.start_sim(args.followers)
    rows: list[Row] = []
    s: Setup | None = None
    try:
        requests.post(
            f"{sim}/sim/accounts",
            json={"appid": ob.APPID, "secret": ob.SECRET, "name": "main"},
            timeout=600,
        ).raise_for_status()
        requests.post(f"{sim}/sim/faults", json={"quota_scale": 1000}, timeout=10)
        with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
            work = Path(tmp)
            s = prepare(args, sim, work)
            requests.post(f"{sim}/sim/faults", json={"latency_ms": args.latency_ms}, timeout=10)
            s.server = cb.start_bankwx(
                s.env, None, work, extra=("--send-threads", str(args.send_threads))
            )
            say(
                f"{args.followers:,} followers, {len(s.customers):,} bound; answers delayed "
                f"{args.latency_ms} ms; bankwx serve at {s.server.url}"
            )
            try:
                if parts & {"a", "c"}:
                    tpl = s.alert_template
                    before = ceiling(s, tpl, args.send_threads, args.ceiling_sends, "a-before")
                    rate = args.load * before
                    if "a" in parts:
                        row = run_a(s, rate, before)
                        rows.append(row)
                    if "c" in parts:
                        rows += run_c(s, wrk, rate)
                    after = ceiling(s, tpl, args.send_threads, args.ceiling_sends, "a-after")
                    for row in rows:
                        if row.part == "a":
                            row.ceiling = (before + after) / 2
                            row.met = (row.ratio or 0) >= RATIO_TARGET and (
                                row.p99_ms is not None and row.p99_ms < P99_TARGET_MS
                            )
                if "b" in parts:
                    rows += run_b(s)
            finally:
                s.server.stop()
            dups = _duplicates(sim)
            if dups:
                s.failed.append(f"{dups} client_msg_id(s) delivered more than once")
    finally:
        if sim_process.stdout is not None:
            sim_process.stdout.close()
        sim_process.terminate()
        sim_process.wait(10)
    print(table(rows))
    print(
        f"(ratios to the mean of each ceiling measured before and after; the simulator "
        f"answers in {args.latency_ms} ms)"
    )
    if s is not None and s.failed:
        for failure in s.failed:
            print(f"CHECK FAILED: {failure}")
        return 1
    return 0


def _duplicates(sim: str) -> int:
    """Alert and broadcast messages WeChat took twice (by client_msg_id; the ceiling's are
    its own, each once)."""
    delivered = requests.get(
        f"{sim}/sim/delivered", params={"kind": "template", "limit": 10_000_000}, timeout=600
    ).json()
    keys = Counter(d.get("client_msg_id") for d in delivered if d.get("client_msg_id"))
    return sum(1 for n in keys.values() if n > 1)


if __name__ == "__main__":
    sys.exit(main())

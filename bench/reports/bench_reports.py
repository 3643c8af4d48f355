"""Benchmark: every `bankwx report` for a month and for a year of traffic, against a bare scan.

A fresh store is generated through the storage calls the writers make: the conversation log
through the receiver's group insert (``Messages.insert_answered_many``) with the roll-ups live
counting writes (``reports.count_outcome``'s, summed per hour and written with the roll-ups'
own upsert, ``Rollups.add_many``), followers through the follower sync's
``Followers.insert_listed`` (which counts them), agent sessions through ``Agents`` (queue,
take, responded, close, rate), alerts through ``Alerts`` (intake, recipients, WeChat's
acceptance, SMS fallback, rejections: their roll-ups written by the alerts' storage), and API
calls through ``ApiCalls.add`` (the call recorder's flush). Big transactions, no HTTP: the
figures measured are the reports', not the generator's.

At full scale (``--scale 1``) the year holds 10,000,000 inbound messages and 1,000,000
followers, with 20,000 agent sessions, 100,000 alerts and the API calls of 8 endpoints every
hour in proportion; ``--scale 0.01`` makes 1% of each. Broadcasts: two mass broadcasts to all
a week, whatever the scale (``Broadcasts.insert`` and ``update``; their report reads the
broadcast rows themselves, no roll-up).

Each report runs for a month (June 2026, by day) and the year (December 2025 to November
2026, by month), account 'main': timed inside the process (one snapshot to rows:
``reports.request`` and ``reports.run``), as the whole command (``bankwx report NAME ...
--format json``, wall time), and beside a bare query over the raw tables giving the same
figures. Medians of ``--runs`` runs. Targets (issue 18): inside the process under 1 s for a
month and 3 s for the year, at least 10x faster than the bare scan; the whole command at most
0.25 s more than inside the process.

    .venv/bin/python bench/reports/bench_reports.py [--scale 0.01] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

APPID = "wx1234567890abcdef"
ACCOUNT = "main"
ADD_ACCOUNT = [
    "account", "add", ACCOUNT, "--appid", APPID, "--secret", "0123456789abcdef0123456789abcdef",
    "--token", "tok123", "--aes-key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "--original-id", "gh_0123456789ab", "--mode", "safe",
]  # fmt: skip
FULL_MESSAGES = 10_000_000
FULL_FOLLOWERS = 1_000_000
SESSIONS_PER_MESSAGE = 1 / 500
ALERTS_PER_MESSAGE = 1 / 100
ENDPOINTS = ("/cgi-bin/message/custom/send", "/cgi-bin/message/template/send",
             "/cgi-bin/user/info", "/cgi-bin/user/info/batchget", "/cgi-bin/user/get",
             "/cgi-bin/menu/get", "/cgi-bin/stable_token", "/cgi-bin/media/upload")  # fmt: skip
# the year, in the bank's time (UTC+8): 2025-12-01 to 2026-12-01
START = datetime(2025, 11, 30, 16, tzinfo=UTC)
HOURS = 365 * 24
RANGES = {
    "month": {"since": "2026-06-01", "until": "2026-07-01", "by": "day"},
    "year": {"since": "2025-12-01", "until": "2026-12-01", "by": "month"},
}
REPORTS = ("messages", "followers", "menus", "keywords", "unmatched", "agents", "broadcasts",
           "alerts", "api")  # fmt: skip  # unmatched: keywords --unmatched
TARGET_INSIDE = {"month": 1.0, "year": 3.0}
TARGET_RATIO = 10.0
TARGET_STARTUP = 0.25

TEXTS = ["余额", "查询余额", "账单", "信用卡还款", "网点", "人工", "转账限额", "利率", "理财",
         "你好", "挂失", "开户", "积分", "客服电话", "营业时间"]  # fmt: skip
UNMATCHED = ["请问怎么开通手机银行", "我的卡被锁了怎么办", "贷款利率是多少", "外汇牌价",
             "ATM取款限额", "境外用卡", "我想投诉"]  # fmt: skip
CLICKS = ["BALANCE", "BILL", "BRANCHES", "ALERTS", "AGENT", "RATES"]
VIEWS = ["https://bank.example.com/loans", "https://bank.example.com/cards"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hour_weights() -> list[float]:
    """Traffic by hour of the bank's day: quiet at night, busy in office hours."""
    return [0.15 if h < 7 else 1.6 if 9 <= h < 12 or 14 <= h < 17 else 0.9 for h in range(24)]


def _spread(total: int, rng: random.Random) -> list[int]:
    """How many of ``total`` fall in each hour of the year."""
    weights = _hour_weights()
    per_hour = [weights[(h + 8) % 24] * (0.8 + 0.4 * rng.random()) for h in range(HOURS)]
    scale = total / sum(per_hour)
    counts = [int(w * scale) for w in per_hour]
    for i in rng.sample(range(HOURS), total - sum(counts)):
        counts[i] += 1
    return counts


# --- the store -----------------------------------------------------------------------------------


def bankwx(*args: str) -> list[str]:
    return [sys.executable, "-m", "bankwx_cli", *args]


def make_store(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
    env.update(
        BANKWX_DB=str(folder / "bench.db"),
        BANKWX_MASTER_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        BANKWX_KEY_FILE=str(folder / "unused.key"),
        BANKWX_OPERATOR="bench",
        BANKWX_INTERACTIVE="0",
    )
    for step in (["init"], ADD_ACCOUNT):
        done = subprocess.run(bankwx(*step), env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"bankwx {step[0]} failed: {done.stdout}{done.stderr}")
    return env


@contextmanager
def app_in(env: dict[str, str]) -> Iterator[Any]:
    os.environ.update(env)
    from bankwx_cli.clock import FixedClock
    from bankwx_cli.context import AppContext
    from bankwx_cli.settings import from_environment

    app = AppContext(from_environment(), clock=FixedClock(START + timedelta(hours=HOURS + 12)))
    try:
        yield app
    finally:
        app.close()


def generate(app: Any, scale: float, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    made: dict[str, int] = {}
    followers = max(100, round(FULL_FOLLOWERS * scale))
    messages = max(1000, round(FULL_MESSAGES * scale))
    app.store.db.execute("PRAGMA synchronous = OFF")  # a bench store: no crash to survive
    app.store.followers.bulk_mode(cache_mb=256)
    openids = [f"oBench{i:022d}" for i in range(followers)]
    steps: list[tuple[str, Callable[[], int]]] = [
        ("keyword rules", lambda: _rules(app)),
        ("followers", lambda: _followers(app, openids, rng)),
        ("messages", lambda: _messages(app, openids, messages, rng)),
        ("agent sessions", lambda: _sessions(app, openids, messages, rng)),
        ("alerts", lambda: _alerts(app, openids, messages, rng)),
        ("api call hours", lambda: _api(app, messages, rng)),
        ("broadcasts", lambda: _broadcasts(app, followers, rng)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        made[name] = step()
        print(f"  {name}: {made[name]:,} in {time.perf_counter() - started:.1f} s", flush=True)
    return made


def _rules(app: Any) -> int:
    from bankwx_cli.models.replies import TextReply
    from bankwx_cli.models.rules import Rule

    at = _iso(START.timestamp())
    with app.store.transaction():
        for text in TEXTS:
            rule = Rule(0, ACCOUNT, text, "exact", 0, TextReply(f"关于{text}的回复"), None, None)
            app.store.keyword_rules.add(rule, "bench", at)
        for key in CLICKS:
            rule = Rule(0, ACCOUNT, key, "click", 0, TextReply(f"菜单{key}"), None, None)
            app.store.keyword_rules.add(rule, "bench", at)
    return len(TEXTS) + len(CLICKS)


def _followers(app: Any, openids: list[str], rng: random.Random) -> int:
    from bankwx_cli.models.followers import Profile

    scenes = ["ADD_SCENE_SEARCH", "ADD_SCENE_QR_CODE", "ADD_SCENE_PROFILE_CARD", "ADD_SCENE_OTHERS"]
    year = START.timestamp()
    page = 10_000
    for start in range(0, len(openids), page):
        some = openids[start : start + page]
        infos = []
        for openid in some:
            scene = rng.choice(scenes)
            qr = rng.randint(1, 50) if scene == "ADD_SCENE_QR_CODE" else None
            when = int(year + rng.random() * HOURS * 3600)
            infos.append(Profile(openid, when, scene, qr, None, "zh_CN", None, None, True, ()))
        with app.store.transaction():
            app.store.followers.insert_listed(ACCOUNT, some, infos, 1, _iso(year))
    return len(openids)


def _message(rng: random.Random, rules: dict[str, int]) -> tuple[str, str, str, str, str, str]:
    """msg_type, event, content, route, outcome, reply of one inbound message."""
    roll = rng.random()
    if roll < 0.55:
        if rng.random() < 0.7:
            text = rng.choice(TEXTS)
            outcome = "replied" if rng.random() < 0.99 else "handler_error"
            return "text", "", text, f"rule:{rules[text]}", outcome, f"关于{text}的回复"
        return "text", "", rng.choice(UNMATCHED), "default", "replied", "您好，请稍候"
    if roll < 0.75:
        key = rng.choice(CLICKS)
        return "event", "click", key, f"rule:{rules[key]}", "replied", f"菜单{key}"
    if roll < 0.80:
        return "event", "view", rng.choice(VIEWS), "event:view", "recorded", ""
    if roll < 0.84:
        return "event", "subscribe", "", "event:subscribe", "replied", "欢迎关注"
    if roll < 0.855:
        return "event", "unsubscribe", "", "event:unsubscribe", "silent", ""
    if roll < 0.95:
        late = rng.random() < 0.05
        return "image", "", "", "default", "late_enqueued" if late else "replied", "已收到"
    return "voice", "", "", "unknown:voice", "unknown_type", ""


def _messages(app: Any, openids: list[str], total: int, rng: random.Random) -> int:
    from bankwx_cli.domain import reports
    from bankwx_cli.storage.reports import Rollups

    rules = {r.pattern: r.id for r in app.store.keyword_rules.for_account(ACCOUNT)}
    rollups = Rollups(app.store.db)
    tally = reports.Tally()  # the receiver's group write's: what its upserts add up to
    rows: list[tuple[Any, ...]] = []
    replies: list[bytes | None] = []  # each row's reply, sealed by the store
    n = 0
    for hour, count in enumerate(_spread(total, rng)):
        base = START.timestamp() + hour * 3600
        for ts in sorted(base + rng.random() * 3600 for _ in range(count)):
            n += 1
            msg_type, event, content, route, outcome, reply = _message(rng, rules)
            at = _iso(ts)
            handling = round(math.exp(rng.gauss(3.2, 0.6)), 1)
            rows.append((ACCOUNT, rng.choice(openids), msg_type, event, content, str(n),
                         f"b{n}", route, outcome, handling, at, ts,
                         *(("text", reply) if reply else (None, None))))  # fmt: skip
            replies.append(reply.encode() if reply else None)
            reports.count_outcome(
                tally, ACCOUNT, at=at, msg_type=msg_type, event=event,
                key=content if msg_type == "event" else "", route=route, outcome=outcome,
                handling_ms=handling, qr_scene="",
            )  # fmt: skip
        if len(rows) >= 50_000 or hour == HOURS - 1:
            with app.store.transaction():
                app.store.messages.insert_answered_many(rows, replies)
            rows, replies = [], []
        if hour % 24 == 23:
            with app.store.transaction():
                tally.write(rollups)
    with app.store.transaction():
        tally.write(rollups)
    return n


def _sessions(app: Any, openids: list[str], messages: int, rng: random.Random) -> int:
    from bankwx_cli.models.agents import NewAgent, NewAgentGroup

    agents = app.store.agents
    at = _iso(START.timestamp())
    with app.store.transaction():
        group = agents.add_group(
            NewAgentGroup(ACCOUNT, "retail", "round-robin", 300, 60, None, None, "bench", at)
        )
        names = [f"agent{i}" for i in range(8)]
        for name in names:
            agent_id = agents.add(NewAgent(ACCOUNT, name, 100_000, None, None, "bench", at))
            agents.set_groups(agent_id, [group])
    staff = [agents.get(ACCOUNT, name) for name in names]
    total = max(10, round(messages * SESSIONS_PER_MESSAGE))
    stamps = sorted(START.timestamp() + rng.random() * HOURS * 3600 for _ in range(total))
    for start in range(0, total, 1000):
        with app.store.transaction():
            for entered in stamps[start : start + 1000]:
                openid = rng.choice(openids)
                session, new = agents.queue(ACCOUNT, openid, group, _iso(entered))
                if not new:
                    continue
                if rng.random() < 0.1:  # left, or timed out, before an agent took it
                    agents.close(session.id, "timeout", _iso(entered + 300))
                    continue
                opened = entered + rng.expovariate(1 / 40)
                agents.take(rng.choice(staff), [group], openid, _iso(opened))
                agents.responded(session.id, _iso(opened + rng.expovariate(1 / 45)))
                agents.close(session.id, "agent", _iso(opened + rng.expovariate(1 / 400)))
                if rng.random() < 0.4:
                    agents.rate(session.id, rng.randint(1, 5))
    return total


def _alerts(app: Any, openids: list[str], messages: int, rng: random.Random) -> int:
    store = app.store.alerts
    total = max(10, round(messages * ALERTS_PER_MESSAGE))
    stamps = sorted(START.timestamp() + rng.random() * HOURS * 3600 for _ in range(total))
    for start in range(0, total, 1000):
        with app.store.transaction():
            for i, received in enumerate(stamps[start : start + 1000], start=start):
                at = _iso(received)
                kind = rng.choice(("transaction", "transaction", "login", "repayment"))
                if rng.random() < 0.02:
                    store.note("core", ACCOUNT, f"x{i}", "rejected", "no rule", at, "nosuch")
                    continue
                row = store.add_event(
                    source="core", event_id=f"e{i}", account=ACCOUNT, type_=kind,
                    customer_id=f"C{i % 5000}", occurred_at=at, security=False,
                    amount_fen=rng.randint(100, 10_000_00), content_hash=f"h{i}",
                    data={"event": {"event_id": f"e{i}"}}, state="queued", received_at=at,
                    received_ts=received,
                )  # fmt: skip
                if row is None:
                    continue
                if rng.random() < 0.05:  # an unbound customer: SMS at intake
                    store.update_event(row, channel="sms", state="sms", reason="unbound")
                    continue
                openid = rng.choice(openids)
                store.add_recipient(row, openid, None, "queued", None)
                accepted = received + rng.expovariate(1 / 0.4)
                store.update_recipient(row, openid, state="sent", msgid=f"m{i}",
                                       accepted_ts=accepted)  # fmt: skip
                if rng.random() < 0.9:
                    store.update_recipient(row, openid, state="delivered", delivery="success")
                store.update_event(row, state="delivered", sent_at=_iso(accepted))
    return total


def _broadcasts(app: Any, followers: int, rng: random.Random) -> int:
    """Two mass broadcasts to all a week (a bank's pace whatever its size), made, approved,
    sent and finished, with WeChat's job counts."""
    from bankwx_cli.models.broadcasts import Audience, BroadcastUpdate, MassJob, TextContent
    from bankwx_cli.models.broadcasts import Broadcast as Made

    total = 0
    with app.store.transaction():
        for week in range(52):
            for n in range(2):
                created = START.timestamp() + (week * 7 + n * 3) * 86400 + 3600 * 9
                approved, sent = created + rng.uniform(600, 7200), created + 86400
                title = f"第{week + 1}周通知{n + 1}"
                made = Made(0, ACCOUNT, title, TextContent(f"示例银行：{title}"), Audience("all"),
                            "sent", f"h{week}-{n}", "maker", _iso(created), _iso(sent),
                            audience_size=followers, submitted_by="maker",
                            submitted_at=_iso(created), approved_by="checker",
                            approved_at=_iso(approved), started_at=_iso(sent),
                            finished_at=_iso(sent + 600))  # fmt: skip
                row = app.store.broadcasts.insert(made)
                filtered = rng.randint(0, followers // 50)
                errors = rng.randint(0, followers // 1000)
                job = MassJob("SEND_SUCCESS", followers, filtered, followers - filtered - errors,
                              errors)  # fmt: skip
                app.store.broadcasts.update(row, BroadcastUpdate(jobs={f"msg{row}": job}))
                total += 1
    return total


def _api_rows() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """How ``ApiCalls.add`` takes its rows: the recorder's typed counts where the models have
    them, else mappings."""
    try:
        from bankwx_cli.models import wechat

        return wechat.ApiCallCount, wechat.ApiHourCount, wechat.ApiLatencyCount
    except AttributeError:
        return dict, dict, dict


def _api(app: Any, messages: int, rng: random.Random) -> int:
    from bankwx_cli.models.reports import bucket_of

    call_row, hour_row, latency_row = _api_rows()
    per_hour = max(1, round(messages / HOURS / 4))
    made = 0
    for day in range(HOURS // 24):
        rows, hourly, latency = [], [], []
        for h in range(24):
            stamp = START + timedelta(hours=day * 24 + h)
            hour = stamp.strftime("%Y-%m-%dT%H:00:00Z")
            for endpoint in ENDPOINTS:
                calls = rng.randint(1, per_hour)
                errors = sum(1 for _ in range(min(calls, 50)) if rng.random() < 0.01)
                buckets: dict[int, int] = {}
                for _ in range(min(calls, 20)):
                    b = bucket_of(math.exp(rng.gauss(4.0, 0.5)))
                    buckets[b] = buckets.get(b, 0) + 1
                rows.append(call_row(appid=APPID, endpoint=endpoint, bucket=hour, outcome="ok",
                                     errcode=0, calls=calls, retries=errors,
                                     total_ms=calls * 60.0, max_ms=400.0))  # fmt: skip
                hourly.append(hour_row(appid=APPID, hour=hour, endpoint=endpoint, calls=calls,
                                       errors=errors, retries=errors))  # fmt: skip
                latency += [latency_row(appid=APPID, hour=hour, endpoint=endpoint, bucket=b,
                                        n=n) for b, n in buckets.items()]  # fmt: skip
                made += 1
        app.store.api_calls.add(rows, hourly, latency)
    return made


# --- the bare scans: the same figures from the raw tables -----------------------------------

_PERIOD = {
    "day": "strftime('%Y-%m-%d', {c}, '+8 hours')",
    "month": "strftime('%Y-%m', {c}, '+8 hours')",
}


def _range(spec: dict[str, str]) -> tuple[str, str, str]:
    from bankwx_cli.clock import iso, parse_user_time

    return iso(parse_user_time(spec["since"])), iso(parse_user_time(spec["until"])), spec["by"]


def bare(app: Any, name: str, spec: dict[str, str]) -> None:
    db = app.store.db
    since, until, by = _range(spec)
    p = _PERIOD[by].format(c="at")
    args = {"a": ACCOUNT, "s": since, "u": until}
    inbound = "account = :a AND direction = 'in' AND at >= :s AND at < :u"
    if name == "messages":
        db.all(
            f"SELECT {p} AS p, count(*), sum(deliveries - 1), "  # noqa: S608
            "sum(outcome IN ('replied', 'rated', 'ended', 'handover')), "
            "sum(outcome = 'replied' AND route = 'default'), sum(outcome = 'late_enqueued'), "
            "sum(outcome IN ('late_no_window', 'late_no_allowance')), "
            "sum(outcome IN ('handler_error', 'unknown_action')), "
            "sum(outcome IN ('recorded', 'ignored', 'silent', 'forwarded', 'queued')) "
            f"FROM messages WHERE {inbound} GROUP BY p",
            args,
        )
        found: dict[str, list[float]] = {}
        for row in db.all(
            f"SELECT {p} AS p, handling_ms FROM messages WHERE {inbound} "  # noqa: S608
            "AND handling_ms IS NOT NULL ORDER BY p, handling_ms",
            args,
        ):
            found.setdefault(row[0], []).append(row[1])
        for values in found.values():
            for share in (0.5, 0.9, 0.99):
                values[max(0, math.ceil(share * len(values)) - 1)]
    elif name == "followers":
        db.all(
            f"SELECT {p} AS p, sum(event = 'subscribe'), sum(event = 'unsubscribe') "  # noqa: S608
            f"FROM messages WHERE {inbound} AND msg_type = 'event' "
            "AND event IN ('subscribe', 'unsubscribe') GROUP BY p",
            args,
        )
        q = _PERIOD[by].format(c="subscribe_at")
        db.all(
            f"SELECT {q} AS p, count(*) FROM followers WHERE account = :a "  # noqa: S608
            "AND subscribe_at >= :s AND subscribe_at < :u GROUP BY p",
            args,
        )
    elif name == "menus":
        db.all(
            f"SELECT {p} AS p, event, content, count(*) FROM messages WHERE {inbound} "  # noqa: S608
            "AND msg_type = 'event' AND event IN ('click', 'view', 'view_miniprogram', "
            "'scancode_push', 'scancode_waitmsg', 'pic_sysphoto', 'pic_photo_or_album', "
            "'pic_weixin', 'location_select') GROUP BY p, event, content",
            args,
        )
    elif name == "keywords":
        db.all(
            f"SELECT {p} AS p, route, count(*) FROM messages WHERE {inbound} "  # noqa: S608
            "AND route LIKE 'rule:%' AND outcome != 'unknown_action' GROUP BY p, route",
            args,
        )
    elif name == "unmatched":  # the whole log read, not its partial index of unmatched texts
        db.all(
            f"SELECT {p} AS p, content, count(*), count(DISTINCT openid) "  # noqa: S608
            f"FROM messages NOT INDEXED WHERE {inbound} AND msg_type = 'text' "
            "AND route = 'default' GROUP BY p, content",
            args,
        )
    elif name == "agents":
        app.store.rollups.agent_sessions([ACCOUNT], since, until)
    elif name == "broadcasts":
        for row in db.all(
            "SELECT id FROM broadcasts WHERE account = :a AND coalesce(started_at, "
            "created_at) >= :s AND coalesce(started_at, created_at) < :u",
            args,
        ):
            app.store.broadcasts.get(int(row[0]))
    elif name == "alerts":
        app.store.alerts.counts(since, until, (ACCOUNT,))
        app.store.alerts.latencies_ms(since, until, (ACCOUNT,))
    elif name == "api":
        q = _PERIOD[by].format(c="bucket")
        db.all(
            f"SELECT {q} AS p, endpoint, sum(calls), sum(CASE WHEN outcome != 'ok' THEN calls "  # noqa: S608
            "ELSE 0 END), sum(retries) FROM api_calls WHERE appid = :appid AND bucket >= :s "
            "AND bucket < :u GROUP BY p, endpoint",
            {"appid": APPID, "s": since, "u": until},
        )


# --- timing ----------------------------------------------------------------------------------


def median_time(runs: int, call: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def inside(app: Any, name: str, spec: dict[str, str]) -> int:
    from bankwx_cli.domain import reports

    if name == "unmatched":
        req = reports.request(app, "keywords", account=ACCOUNT, unmatched=True, **spec)
    else:
        req = reports.request(app, name, account=ACCOUNT, **spec)
    return len(reports.run(app, req).rows)


def command(env: dict[str, str], name: str, spec: dict[str, str]) -> None:
    args = ["report", name, "--account", ACCOUNT, "--since", spec["since"], "--until",
            spec["until"], "--by", spec["by"], "--format", "json"]  # fmt: skip
    if name == "unmatched":
        args[1:2] = ["keywords", "--unmatched"]
    done = subprocess.run(bankwx(*args), env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bankwx {' '.join(args)} failed: {done.stderr}")
    json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the full size (1.0)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep", type=Path, help="make the store in this folder and keep it")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bankwx-bench-reports-") as tmp:
        folder = options.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Generating a year at scale {options.scale} into {folder / 'bench.db'}")
        env = make_store(folder)
        started = time.perf_counter()
        with app_in(env) as app:
            made = generate(app, options.scale, options.seed)
        print(f"Generated in {time.perf_counter() - started:.1f} s: "
              + ", ".join(f"{v:,} {k}" for k, v in made.items()))  # fmt: skip
        size = (folder / "bench.db").stat().st_size / 2**20
        print(f"Store: {size:,.0f} MB\n")
        results = []
        with app_in(env) as app:
            app.store.db.execute("PRAGMA cache_size = -262144")
            for name in REPORTS:
                for span, spec in RANGES.items():
                    rows = inside(app, name, spec)  # warm the page cache once
                    t_in = median_time(options.runs, lambda n=name, s=spec: inside(app, n, s))
                    t_cmd = median_time(options.runs, lambda n=name, s=spec: command(env, n, s))
                    t_bare = median_time(options.runs, lambda n=name, s=spec: bare(app, n, s))
                    results.append((name, span, rows, t_in, t_cmd, t_bare))
                    print(f"  {name} {span}: {t_in:.3f} s", flush=True)
        print()
        _table(results)


def _table(results: list[tuple[str, str, int, float, float, float]]) -> None:
    head = ("report", "range", "rows", "inside s", "target", "command s", "cmd - inside",
            "bare scan s", "scan / inside", "ok")  # fmt: skip
    lines = [head]
    for name, span, rows, t_in, t_cmd, t_bare in results:
        ratio = t_bare / t_in if t_in else float("inf")
        ok = (t_in < TARGET_INSIDE[span] and ratio >= TARGET_RATIO
              and t_cmd - t_in <= TARGET_STARTUP)  # fmt: skip
        lines.append((name, span, str(rows), f"{t_in:.3f}", f"< {TARGET_INSIDE[span]:g}",
                      f"{t_cmd:.3f}", f"{t_cmd - t_in:+.3f}", f"{t_bare:.3f}", f"{ratio:.1f}x",
                      "yes" if ok else "no"))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for i, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nTargets: inside the process under 1 s (month) and 3 s (year), at least "
          f"{TARGET_RATIO:g}x faster than the bare scan, the whole command at most "
          f"{TARGET_STARTUP} s more.")  # fmt: skip


if __name__ == "__main__":
    main()

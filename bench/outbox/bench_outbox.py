"""Benchmark: a template broadcast to 100,000 followers through `bankwx outbox run`.

The simulator (`bankwx sim api`, quotas raised, every answer delayed 20 ms) holds the
followers. The broadcast is created, approved and expanded into outbox units by `bankwx
broadcast send` with the broadcast lane paused (the send stops with every unit pending); the
lane is resumed and `bankwx outbox run --format json` sends them all, under the account's rate
budget (raised above what the concurrency can reach, so the dispatcher's own waits are what is
measured). The ceiling is a bare client (requests, no store) making the same
``message/template/send`` calls with the same concurrency (the dispatcher's sending threads),
run before and after bankwx's; the ratio is to the mean of the two, as the machine's speed
drifts. Prints sends per second of both, the ratio (target: at least 0.5) and `outbox run`'s
peak resident memory (target: under 300 MB); checks that every follower got the template once.

    .venv/bin/python bench/outbox/bench_outbox.py [--followers N] [--latency-ms MS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
ACCOUNT = [
    "account", "add", "main", "--appid", APPID, "--secret", SECRET, "--token", "tok123",
    "--aes-key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "--original-id", "gh_0123456789ab", "--mode", "safe",
]  # fmt: skip
RATE = 100_000  # calls a second: above what the threads can reach at the answer delay


def bankwx(*args: str) -> list[str]:
    return [sys.executable, "-m", "bankwx_cli", *args]


def start_sim(followers: int) -> tuple[str, subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
    process = subprocess.Popen(
        bankwx("sim", "api", "--port", "0", "--followers", str(followers), "--seed", "1"),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Listening on "):
        process.kill()
        raise SystemExit(f"the simulator did not start: {line!r}")
    return line.split()[-1], process


def run(env: dict[str, str], *args: str, operator: str = "bench") -> str:
    result = subprocess.run(
        bankwx(*args), env={**env, "BANKWX_OPERATOR": operator}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"bankwx {' '.join(args[:3])} failed: {result.stderr or result.stdout}")
    return result.stdout


def ceiling(
    sim: str, template: dict[str, Any], openids: list[str], threads: int, tag: str
) -> float:
    """The bare client: the same template sends with the same concurrency; sends a second."""
    token = requests.post(
        f"{sim}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        timeout=60,
    ).json()["access_token"]
    local = threading.local()

    def send(pair: tuple[int, str]) -> None:
        number, openid = pair
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        body = {**template, "touser": openid, "client_msg_id": f"{tag}:{number}"}
        answer = session.post(
            f"{sim}/cgi-bin/message/template/send",
            params={"access_token": token},
            data=json.dumps(body, ensure_ascii=False).encode(),
            timeout=60,
        ).json()
        if answer.get("errcode"):
            raise SystemExit(f"the simulator refused a ceiling send: {answer}")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(send, enumerate(openids), chunksize=64):
            pass
    return len(openids) / (time.perf_counter() - started)


def outbox_run(env: dict[str, str]) -> tuple[dict[str, Any], float, float, float]:
    """(outbox run's JSON report, wall seconds, peak RSS in MB, CPU seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        bankwx("outbox", "run", "--format", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    process.stdout.close()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"outbox run failed ({process.returncode}): {err.decode()}")
    cpu = usage.ru_utime + usage.ru_stime
    return json.loads(out), wall, usage.ru_maxrss / 1024, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=int,
        default=RATE,
        help="the account's template budget, calls a second (default: above the threads' reach)",
    )
    args = parser.parse_args()

    sim, sim_process = start_sim(args.followers)
    try:
        requests.post(
            f"{sim}/sim/accounts",
            json={"appid": APPID, "secret": SECRET, "name": "main"},
            timeout=600,
        ).raise_for_status()
        requests.post(f"{sim}/sim/faults", json={"quota_scale": 1000}, timeout=10)
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
            env.update(
                BANKWX_DB=str(Path(tmp) / "bench.db"),
                BANKWX_KEY_FILE=str(Path(tmp) / "master.key"),
                BANKWX_OPERATOR="bench",
                BANKWX_API_BASE=sim,
                HOME=tmp,
            )
            run(env, "init")
            run(env, *ACCOUNT)
            run(env, "account", "update", "main", "--rate", f"message/template/send={args.rate}")
            run(env, "operator", "add", "checker", "--role", "approver")
            run(env, "follower", "sync")
            run(env, "template", "sync")
            templates = json.loads(run(env, "template", "list", "--format", "json"))
            shown = json.loads(
                run(env, "template", "show", templates[0]["template_id"], "--format", "json")
            )
            data = {name: {"value": "测试"} for name in shown["fields"]}
            created = json.loads(
                run(
                    env, "broadcast", "create", "--template", shown["template_id"],
                    "--data", json.dumps(data, ensure_ascii=False), "--to-all",
                    "--title", "bench", "--format", "json",
                )
            )  # fmt: skip
            number = str(created["id"])
            run(env, "broadcast", "submit", number)
            run(env, "broadcast", "approve", number, operator="checker")
            run(env, "outbox", "pause", "--lane", "broadcast")
            started = time.perf_counter()
            run(env, "broadcast", "send", number, "--yes")  # expands; sends nothing: paused
            expanded = time.perf_counter() - started
            units = json.loads(run(env, "outbox", "list", "--state", "pending", "--limit", "1",
                                   "--format", "json"))  # fmt: skip
            threads = int(os.environ.get("BANKWX_OUTBOX_THREADS", "0") or 0) or _threads()
            print(
                f"{args.followers:,} followers, answers delayed {args.latency_ms} ms, "
                f"{threads} sending threads; broadcast {number} expanded in {expanded:.1f} s"
            )
            openids = _followers(sim, args.followers)
            template = {k: v for k, v in units[0]["payload"].items() if k != "touser"}
            requests.post(f"{sim}/sim/faults", json={"latency_ms": args.latency_ms}, timeout=10)
            before = ceiling(sim, template, openids, threads, "before")
            print(f"ceiling before (bare client, {threads} threads): {before:,.0f}/s")
            run(env, "outbox", "resume")
            report, wall, rss, cpu = outbox_run(env)
            after = ceiling(sim, template, openids, threads, "after")
            print(f"ceiling after: {after:,.0f}/s")
            state = json.loads(run(env, "broadcast", "show", number, "--format", "json"))
        sent = report["sent"]
        own = sent / report["seconds"]
        top = (before + after) / 2
        delivered = requests.get(
            f"{sim}/sim/delivered", params={"kind": "template", "limit": 10_000_000}, timeout=600
        ).json()
        ours = [d for d in delivered if str(d.get("client_msg_id", "")).startswith("broadcast:")]
        once = Counter(d["openid"] for d in ours)
        print(
            f"bankwx outbox run: {sent:,} sent in {report['seconds']:.1f} s ({wall:.1f} s with "
            f"start-up), {own:,.0f}/s; broadcast {state['state']}; CPU {cpu:.1f} s "
            f"({1000 * cpu / max(1, sent):.2f} ms a send)"
        )
        print(f"ratio to the ceiling (mean {top:,.0f}/s): {own / top:.2f} (target >= 0.50)")
        print(f"outbox run peak RSS: {rss:.0f} MB (target < 300 MB)")
        if sent != args.followers or report.get("failed"):
            print(f"CHECK FAILED: {sent} sent of {args.followers}; report {report}")
        elif len(once) != args.followers or max(once.values()) > 1:
            print(f"CHECK FAILED: {len(once)} followers got it, at most {max(once.values())} times")
    finally:
        if sim_process.stdout is not None:
            sim_process.stdout.close()
        sim_process.terminate()
        sim_process.wait(10)


def _threads() -> int:
    from bankwx_cli.domain.outbox import SEND_THREADS

    return SEND_THREADS


def _followers(sim: str, expected: int) -> list[str]:
    token = requests.post(
        f"{sim}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        timeout=60,
    ).json()["access_token"]
    openids: list[str] = []
    cursor = ""
    while True:
        page = requests.get(
            f"{sim}/cgi-bin/user/get",
            params={"access_token": token, "next_openid": cursor},
            timeout=60,
        ).json()
        if not page.get("count"):
            break
        openids += page["data"]["openid"]
        cursor = page["next_openid"]
    assert len(openids) == expected, len(openids)
    return openids


if __name__ == "__main__":
    main()

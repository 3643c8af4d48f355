"""Benchmark: `bankwx follower sync` of 1,000,000 simulated followers against the ceiling.

The simulator (`bankwx sim api`, quotas raised) holds the followers. The ceiling is a bare
client (requests, no store) making the same requests with the same concurrency: user/get
pages one after another, then user/info/batchget 100 openids a call from THREADS threads,
parsing every answer; it runs before and after `bankwx follower sync --threads THREADS` (into
a fresh store), and the ratio is to the mean of the two, as the machine's speed drifts.
Prints followers per second, the ratio (target: at least 0.5) and the sync's peak resident
memory (target: under 300 MB).

    .venv/bin/python bench/followers/bench_followers.py [--followers N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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


def ceiling(sim: str, threads: int) -> tuple[int, float]:
    """The bare client: (followers fetched, seconds)."""
    session = requests.Session()
    started = time.perf_counter()
    token = session.post(
        f"{sim}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
        timeout=60,
    ).json()["access_token"]
    openids: list[str] = []
    cursor = ""
    while True:
        page = session.get(
            f"{sim}/cgi-bin/user/get",
            params={"access_token": token, "next_openid": cursor},
            timeout=60,
        ).json()
        if not page.get("count"):
            break
        openids += page["data"]["openid"]
        cursor = page["next_openid"]

    def fetch(batch: list[str]) -> int:
        body = {"user_list": [{"openid": o, "lang": "zh_CN"} for o in batch]}
        answer = session.post(
            f"{sim}/cgi-bin/user/info/batchget",
            params={"access_token": token},
            data=json.dumps(body, ensure_ascii=False).encode(),
            timeout=60,
        ).json()
        return len(answer["user_info_list"])

    batches = [openids[i : i + 100] for i in range(0, len(openids), 100)]
    fetched = 0
    with ThreadPoolExecutor(threads) as pool:
        pending: set[Future[int]] = set()
        for batch in batches:
            if len(pending) >= 2 * threads:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                fetched += sum(f.result() for f in done)
            pending.add(pool.submit(fetch, batch))
        fetched += sum(f.result() for f in wait(pending).done)
    return fetched, time.perf_counter() - started


def run_sync(env: dict[str, str], threads: int) -> tuple[dict[str, Any], float, float]:
    """(the sync's JSON report, wall seconds, peak RSS in MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        bankwx("follower", "sync", "--threads", str(threads), "--format", "json"),
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
        raise SystemExit(f"follower sync failed ({process.returncode}): {err.decode()}")
    return json.loads(out), wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    sim, sim_process = start_sim(args.followers)
    try:
        started = time.perf_counter()
        registered = requests.post(
            f"{sim}/sim/accounts",
            json={"appid": APPID, "secret": SECRET, "name": "main"},
            timeout=600,
        )
        registered.raise_for_status()
        generated = time.perf_counter() - started
        requests.post(f"{sim}/sim/faults", json={"quota_scale": 1000}, timeout=10)
        print(f"simulator: {args.followers:,} followers generated in {generated:.1f} s")

        fetched, before = ceiling(sim, args.threads)
        assert fetched == args.followers, fetched
        print(f"ceiling before the sync (bare client, {args.threads} threads): {before:.1f} s")

        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
            env.update(
                BANKWX_DB=str(Path(tmp) / "bench.db"),
                BANKWX_KEY_FILE=str(Path(tmp) / "master.key"),
                BANKWX_OPERATOR="bench",
                BANKWX_API_BASE=sim,
                HOME=tmp,
            )
            for step in (["init"], ACCOUNT):
                subprocess.run(bankwx(*step), env=env, check=True, capture_output=True)
            report, wall, rss = run_sync(env, args.threads)
        assert report["subscribed"] == args.followers, report
        fetched, after = ceiling(sim, args.threads)
        print(f"ceiling after the sync: {after:.1f} s")
        top = 2 * args.followers / (before + after)
        print(f"ceiling (mean of the two): {top:,.0f}/s")
        own = report["seconds"]
        rate = args.followers / own
        print(
            f"follower sync ({args.threads} threads): {own:.1f} s in the sync, {wall:.1f} s "
            f"with start-up, {rate:,.0f}/s"
        )
        print(f"ratio to the ceiling: {rate / top:.2f} (target >= 0.50)")
        print(f"sync peak RSS: {rss:.0f} MB (target < 300 MB)")
    finally:
        if sim_process.stdout is not None:
            sim_process.stdout.close()
        sim_process.terminate()
        sim_process.wait(10)


if __name__ == "__main__":
    main()

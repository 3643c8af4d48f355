"""`bankwx serve --workers N` under the benchmark's load: several processes on one store.

    .venv/bin/python bench/callbacks/workers.py --workers 2 --rounds 4

The same store, messages and wrk script as run.py, nothing pinned (the workers and wrk share
the machine's cores). Prints each round's requests/s, p50 and p99 and the WAL's size, then
checks that the conversation log holds every message wrk sent once. What it shows: that the
workers' writers take turns on the store's write lock without starving each other, and that
the WAL is checkpointed and restarted while they never pause.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import messages as m  # noqa: E402
import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--messages", type=int, default=250_000)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if args.workers < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--workers and --rounds must be 1 or more, --seconds above 0")
    wrk = run.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bankwx-workers-"))
    requests = work / "requests.txt"
    m.write_requests(requests, args.messages)
    env = run.bankwx_env(work)
    run.prepare_store(env)
    server = run.start_bankwx(env, None, work, args.workers)
    sent = 0
    try:
        for number in range(1, args.rounds + 1):
            load = run.drive(wrk, server, requests, sent, args.seconds, args.connections,
                             0, 1)  # fmt: skip
            sent += load.issued
            wal = (work / "bankwx.db-wal").stat().st_size / 2**20
            print(
                f"round {number}: {load.rps:.0f} req/s, p50 {load.p50_ms:.2f} ms, p99 "
                f"{load.p99_ms:.2f} ms, max {load.max_ms:.1f} ms, WAL {wal:.1f} MB, "
                f"errors {sum(load.errors.values())}",
                flush=True,
            )
    finally:
        server.stop()
    with sqlite3.connect(work / "bankwx.db") as db:
        logged, distinct = db.execute(
            "SELECT count(*), count(DISTINCT dedup_key) FROM messages WHERE direction = 'in'"
        ).fetchone()
    shutil.rmtree(work, ignore_errors=True)
    slack = args.rounds * args.connections  # cut off in flight when a wrk run stops
    ok = logged == distinct and sent - slack <= logged <= sent
    print(f"{'ok' if ok else 'FAILED'}: {logged} messages logged ({distinct} distinct) of {sent}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The receiver's own cost per callback, without HTTP: the ASGI app driven in-process.

    .venv/bin/python bench/inproc/receiver.py --messages 40000 --path mix

A steadier figure than a wrk run on a shared machine, for comparing changes to the hot path:
the same store, account, rules and safe-mode messages of a path as ``bench/callbacks/`` (made by
its ``messages.py``), handed to ``bankwx_cli.server.build(...)`` as ASGI calls by 64 concurrent
tasks on uvloop, with the store's writer thread as in production. Prints the CPU time per
callback of the whole process (user + system) and of each thread. Not a substitute for
``make bench-callbacks``: uvicorn's HTTP work (about a fifth of a callback) is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "callbacks"))

import messages as m  # noqa: E402
import run  # noqa: E402


def thread_cpu() -> dict[str, float]:
    found: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / run.TICKS
    return found


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """The ASGI app's lifespan: started on entry, shut down on exit."""
    stop, started = asyncio.Event(), asyncio.Event()
    events = [{"type": "lifespan.startup"}]

    async def receive() -> dict[str, str]:
        if events:
            return events.pop()
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, str]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    life = asyncio.create_task(app({"type": "lifespan"}, receive, send))
    await started.wait()
    try:
        yield
    finally:
        stop.set()
        await life


async def drive(app: object, lines: list[tuple[str, bytes]], concurrency: int) -> None:
    queue = iter(lines)

    async def one(path_query: str, body: bytes) -> None:
        path, _, query = path_query.partition("?")
        scope = {
            "type": "http", "method": "POST", "path": path, "query_string": query.encode(),
            "headers": [(b"content-length", str(len(body)).encode())],
            "server": ("127.0.0.1", 80),
        }  # fmt: skip
        sent = False

        async def receive() -> dict[str, object]:
            nonlocal sent
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)  # type: ignore[operator]
        if status != [200]:
            raise SystemExit(f"status {status} for {path_query[:60]}")

    async def worker() -> None:
        for path_query, body in queue:
            await one(path_query, body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--path", default="keyword", choices=m.PATHS)
    parser.add_argument(
        "--no-rollups", action="store_true", help="the reports' roll-ups off (their cost)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bankwx-inproc-"))
    requests = work / "requests.txt"
    total = args.messages * (args.rounds + 1)
    m.write_requests(requests, total, args.path)
    env = run.bankwx_env(work)
    run.prepare_store(env)
    os.environ.update(env)
    if args.no_rollups:
        os.environ["BANKWX_BENCH_NO_ROLLUPS"] = "1"
    import uvloop

    from bankwx_cli import server
    from bankwx_cli.context import AppContext
    from bankwx_cli.settings import from_environment

    lines = []
    for line in requests.read_text().splitlines():
        path_query, _, body = line.partition("\t")
        lines.append((path_query, body.encode()))
    receiver = server.build(
        AppContext(from_environment()),
        server.ServeOptions(quiet=True, dispatcher=False, replay_window=3600),
    )

    async def rounds() -> None:
        async with running(receiver):
            await drive(receiver, lines[: args.messages], args.concurrency)  # warm-up
            for r in range(args.rounds):
                part = lines[(r + 1) * args.messages : (r + 2) * args.messages]
                before, wall, cpu = thread_cpu(), time.perf_counter(), time.process_time()
                writer = receiver.app.store.messages.writer
                batches, units = writer.batches, writer.units
                await drive(receiver, part, args.concurrency)
                batches, units = writer.batches - batches, writer.units - units
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                after = thread_cpu()
                per = {k: (after[k] - before.get(k, 0.0)) / len(part) * 1e6 for k in after}
                threads = ", ".join(
                    f"{k} {v:.0f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 1
                )
                print(
                    f"round {r + 1}: {len(part) / wall:7.0f} callbacks/s, "
                    f"CPU {cpu / len(part) * 1e6:5.1f} us per callback ({threads}); "
                    f"{units / max(batches, 1):.1f} units a transaction; "
                    f"RSS {run.rss_mb(os.getpid()):.0f} MB"
                )

    uvloop.run(rounds())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

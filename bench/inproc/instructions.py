"""Instructions per callback, counted by valgrind: a steady figure on a machine whose speed drifts.

    .venv/bin/python bench/inproc/instructions.py --path mix
    .venv/bin/python bench/inproc/instructions.py --http --path mix --concurrency 27
    .venv/bin/python bench/inproc/instructions.py --path keyword --tree . --tree ../base

The receiver is run twice under ``valgrind --tool=callgrind`` on copies of one store: once
answering the warm-up only, once the warm-up and ``--messages`` more. The difference of the two
runs' instruction counts, divided by ``--messages``, is the cost of a callback, start-up and
warm-up taken out (every thread counted). Without ``--http`` the ASGI app is driven in-process
as ``receiver.py`` does; with it, ``bankwx serve --workers 1`` answers HTTP/1.1 requests sent
over ``--concurrency`` keep-alive connections (which also bounds the group commits: under
valgrind every connection's request waits in each group). It does not see time spent waiting
on the kernel or the memory; compare changes with it, and confirm with ``make
bench-callbacks``. ``--tree DIR`` (repeatable) measures another checkout of bankwx (its package
imported from DIR) with the same messages and store. Needs valgrind; a minute or two a tree.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "callbacks"))
sys.path.insert(0, str(HERE))

import messages as m  # noqa: E402
import run  # noqa: E402


def serve(requests: Path, warmup: int, count: int) -> None:
    """Inside valgrind: the receiver answers warmup, then count, of the requests."""
    import receiver
    import uvloop

    from bankwx_cli import server
    from bankwx_cli.context import AppContext
    from bankwx_cli.settings import from_environment

    lines = []
    with requests.open(encoding="utf-8") as source:
        for _, line in zip(range(warmup + count), source, strict=False):
            path_query, _, body = line.rstrip("\n").partition("\t")
            lines.append((path_query, body.encode()))
    app = server.build(
        AppContext(from_environment()),
        server.ServeOptions(quiet=True, dispatcher=False, replay_window=3600),
    )

    async def main() -> None:
        async with receiver.running(app):
            await receiver.drive(app, lines[:warmup], 64)
            if count:
                await receiver.drive(app, lines[warmup:], 64)

    uvloop.run(main())


async def post_all(url: str, lines: list[tuple[str, bytes]], connections: int) -> None:
    """Each line as one POST, over connections keep-alive HTTP/1.1 connections."""
    host, _, port = url.removeprefix("http://").partition(":")
    queue = iter(lines)

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for path_query, body in queue:
            writer.write(
                f"POST {path_query} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"answer {head[:40]!r} to {path_query[:60]}")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


def read_lines(requests: Path, start: int, count: int) -> list[tuple[str, bytes]]:
    lines = []
    with requests.open(encoding="utf-8") as source:
        for number, line in enumerate(source):
            if number >= start + count:
                break
            if number >= start:
                path_query, _, body = line.rstrip("\n").partition("\t")
                lines.append((path_query, body.encode()))
    return lines


def counted(
    work: Path, store: Path, env: dict[str, str], tree: Path, args: argparse.Namespace,
    count: int,
) -> int:  # fmt: skip
    """Instructions of one run under callgrind, on a fresh copy of the store."""
    copy = work / f"run-{count}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy)
    env = dict(env, BANKWX_DB=str(copy / "bankwx.db"), BANKWX_KEY_FILE=str(copy / "master.key"))
    env["PYTHONPATH"] = str(tree)
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={copy}/callgrind.out"]
    requests = work / "requests.txt"
    if not args.http:
        done = subprocess.run(
            [*valgrind, sys.executable, __file__, "--inside", str(requests),
             "--warmup", str(args.warmup), "--messages", str(count)],
            env=env, capture_output=True, text=True, check=False, cwd=tree,
        )  # fmt: skip
        stderr, failed = done.stderr, done.returncode != 0
    else:
        server = run.start_bankwx(env, None, copy, tree=tree, wrapper=tuple(valgrind))
        for start, n in ((0, args.warmup), (args.warmup, count)):
            if n:
                asyncio.run(post_all(server.url, read_lines(requests, start, n), args.concurrency))
        server.stop(timeout=300)  # valgrind writes its counts on the way out
        log = copy / "bankwx.log"
        stderr = log.read_text()
        failed = "worker stopped" not in stderr
        groups = re.search(r"group_commits=(\d+) grouped_writes=(\d+)", stderr)
        if groups and count:
            print(f"  {int(groups[2]) / max(int(groups[1]), 1):.1f} writes a group commit")
    found = re.search(r"Collected : (\d+)", stderr)
    if failed or found is None:
        raise SystemExit(f"run of {count} failed:\n{stderr[-3000:]}")
    return int(found.group(1))


def check_trees(parser: argparse.ArgumentParser, trees: list[Path] | None) -> None:
    """A usage error for a ``--tree`` that is no checkout of bankwx; an exit without valgrind."""
    for tree in trees or []:
        if not (tree / "bankwx_cli").is_dir():
            parser.error(f"--tree {tree}: not a checkout of bankwx (no bankwx_cli/ in it)")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="mix", choices=m.PATHS)
    parser.add_argument("--messages", type=int, default=2000, help="callbacks counted")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--http", action="store_true", help="bankwx serve, over HTTP")
    parser.add_argument("--concurrency", type=int, default=64, help="connections (--http)")
    parser.add_argument("--tree", type=Path, action="append", help="checkout(s) to measure")
    parser.add_argument("--keep", action="store_true", help="keep the runs' callgrind files")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        serve(args.inside, args.warmup, args.messages)
        return 0
    if args.messages < 1 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--messages and --concurrency must be 1 or more, --warmup 0 or more")
    check_trees(parser, args.tree)
    work = Path(tempfile.mkdtemp(prefix="bankwx-icount-"))
    try:
        m.write_requests(work / "requests.txt", args.warmup + args.messages, args.path)
        env = run.bankwx_env(work / "store")
        (work / "store").mkdir()
        run.prepare_store(env)
        for tree in args.tree or [ROOT]:
            base = counted(work, work / "store", env, tree.resolve(), args, 0)
            total = counted(work, work / "store", env, tree.resolve(), args, args.messages)
            per = (total - base) / args.messages
            print(f"{args.path}: {per / 1000:.1f}k instructions per callback ({tree or ROOT})")
    finally:
        if args.keep:
            print(f"kept: {work}/run-*/callgrind.out (callgrind_annotate FILE)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Instructions per message of the engine and the store alone, in groups of a fixed size.

    .venv/bin/python bench/inproc/engine.py --path mix
    .venv/bin/python bench/inproc/engine.py --path subscribe --group 8 --tree . --tree ../base

What ``instructions.py`` counts in process depends on how the callbacks happen to group (the
writer takes what is queued when it runs), and a group's fixed statements are a large share
of a message's cost. Here one thread opens ``--group`` callbacks (signature, decryption,
parse), decides and queues their quick answers, and runs them as one group commit, waiting for
its results before the next group: every group the same size, no HTTP and no event loop. The
receiver is run twice under ``valgrind --tool=callgrind`` on copies of one store (``--rounds``
groups and ``--base`` groups) and the difference divided by the messages between them. The
same requests (written once to ``--requests``, kept between runs) and store for every
``--tree``. The checkpointer is held off (it runs by the clock). Needs valgrind.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "callbacks"))

import messages as m  # noqa: E402
import run  # noqa: E402
from instructions import check_trees  # noqa: E402


def groups(requests: Path, rounds: int, size: int) -> int:
    """Inside valgrind: rounds groups of size quick answers; the writer's batch count."""
    from bankwx_cli import server  # noqa: F401 - the areas' registrations, as serve has them
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain import routing
    from bankwx_cli.errors import BankwxError
    from bankwx_cli.server import _query
    from bankwx_cli.settings import from_environment

    app = AppContext(from_environment())
    app.store.messages.writer.checkpoint_s = 1e9
    engine = routing.Engine(app, 4.0, 3600)
    engine.refresh(True)
    runtime = engine.runtime("main")
    lines = [line.rstrip("\n").partition("\t") for line in requests.open(encoding="utf-8")]
    if len(lines) < rounds * size:
        raise SystemExit(f"{requests}: {len(lines)} requests, {rounds * size} needed")
    failed: list[BaseException] = []
    answered = 0

    def done(value: object, error: BaseException | None) -> None:
        nonlocal answered
        answered += 1
        if error is not None:
            failed.append(error)

    for number in range(rounds * size):
        path_query, _, body = lines[number]
        try:
            inbound = engine.open(runtime, _query(path_query.partition("?")[2].encode()),
                                  body.encode())  # fmt: skip
        except BankwxError as exc:  # an old --requests file: its timestamps have expired
            raise SystemExit(f"request {number + 1} of {requests} refused: {exc}") from None
        decision = engine.quick(runtime, inbound)
        if decision is None:
            raise SystemExit(f"not a quick answer: {path_query[:60]}")
        engine.answer(runtime, inbound, decision, routing.Ticket(), done, False)
        if (number + 1) % size == 0:
            engine.wake()
            while answered <= number:  # the writer thread took the batch: wait for it
                time.sleep(0.0005)
    if failed:
        raise SystemExit(f"{len(failed)} answers failed: {failed[0]!r}")
    batches = app.store.messages.writer.batches
    app.close()
    return batches


def counted(
    store: Path, key: str, tree: Path, requests: Path, rounds: int, size: int
) -> tuple[int, int]:
    """Instructions and the writer's batches of one run under callgrind, on a fresh copy of
    the store (made with the master key given)."""
    copy = store.with_name(f"{store.name}-{rounds}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy)
    env = run.bankwx_env(copy, master_key=key)
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={copy}/callgrind.out",
         sys.executable, __file__, "--inside", str(requests), "--rounds", str(rounds),
         "--group", str(size)],
        env=env, capture_output=True, text=True, check=False, cwd=tree,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    batches = re.search(r"batches=(\d+)", done.stdout)
    if done.returncode or found is None or batches is None:
        said = [line for line in done.stderr.splitlines() if not line.startswith("==")]
        raise SystemExit(f"run of {rounds} groups failed:\n" + "\n".join(said[-20:]))
    return int(found.group(1)), int(batches.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="mix", choices=m.PATHS)
    parser.add_argument("--group", type=int, default=27, help="messages a group commit")
    parser.add_argument("--rounds", type=int, default=100, help="groups of the counted run")
    parser.add_argument("--base", type=int, default=20, help="groups of the run subtracted")
    parser.add_argument("--tree", type=Path, action="append", help="checkout(s) to measure")
    parser.add_argument(
        "--requests", type=Path,
        help="requests file, written if missing (its timestamps expire after an hour)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the runs' callgrind files")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(f"batches={groups(args.inside, args.rounds, args.group)}")
        return 0
    if args.group < 1 or not 0 <= args.base < args.rounds:
        parser.error("--group must be 1 or more, --base 0 or more and below --rounds")
    check_trees(parser, args.tree)
    work = Path(tempfile.mkdtemp(prefix="bankwx-engine-"))
    try:
        requests = args.requests or work / "requests.txt"
        if not requests.exists():
            m.write_requests(requests, args.rounds * args.group, args.path)
        messages = (args.rounds - args.base) * args.group
        for number, tree in enumerate(args.tree or [ROOT]):
            tree = tree.resolve()
            store = work / f"store-{number}"  # made by the tree's own code (its schema)
            store.mkdir()
            env = dict(run.bankwx_env(store), PYTHONPATH=str(tree))
            run.prepare_store(env)
            key = env["BANKWX_MASTER_KEY"]
            base, base_batches = counted(store, key, tree, requests, args.base, args.group)
            total, batches = counted(store, key, tree, requests, args.rounds, args.group)
            per = (total - base) / messages
            print(f"{args.path}: {per / 1000:.1f}k instructions per message, groups of "
                  f"{args.group} ({batches - base_batches} group commits for "
                  f"{args.rounds - args.base} groups; {tree})")  # fmt: skip
    finally:
        if args.keep:
            print(f"kept: {work}/store-*-*/callgrind.out (callgrind_annotate FILE)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

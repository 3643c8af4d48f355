"""Two versions of bankwx against each other, rounds interleaved: is a change faster?

    git worktree add --detach /tmp/bankwx-base main        # the version to compare against
    .venv/bin/python bench/callbacks/compare.py --base /tmp/bankwx-base --path mix --rounds 6

``bankwx serve --workers 1`` of this tree and of ``--base`` (another checkout of the project,
run with this tree's interpreter and libraries) each get a store of their own, prepared as in
run.py, and are driven in turn by the same wrk script on disjoint slices of the same messages,
with the same pinning (server on core 1, wrk on core 0). A disturbance of the machine falls on
both alike, so the ratio of each pair of rounds is steadier than either figure (the peer's
own requests/s moved by a third between minutes on the development machine). Prints each
round's requests/s, p99 and the ratio new/base, their median, and each server's mean group
commit (writes a transaction, from its stop line): a change that makes the loop faster can
make the groups smaller and lose what it won.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import messages as m  # noqa: E402
import run  # noqa: E402

ROOT = HERE.parent.parent


def start(tree: Path, work: Path, name: str) -> run.Server:
    """`bankwx serve` of the source tree, on a fresh store in work/name."""
    home = work / name
    home.mkdir()
    env = run.bankwx_env(home)
    run.prepare_store({**env, "PYTHONPATH": str(tree)})  # by its own code (its own schema)
    return run.start_bankwx(env, 1, home, name=name, tree=tree)


def group_size(log: Path) -> str:
    found = re.search(
        r"callbacks=(\d+) group_commits=(\d+) grouped_writes=(\d+)(?: group_commit_s=([\d.]+))?",
        log.read_text(),
    )
    if found is None:
        return "?"
    callbacks, groups, writes = (int(found.group(i)) for i in (1, 2, 3))
    size = f"{writes / max(groups, 1):.1f}"
    if found.group(4) is None:  # a version whose stop line does not say
        return size
    seconds = float(found.group(4))
    return (
        f"{size} ({seconds / max(groups, 1) * 1e3:.2f} ms a group, "
        f"{seconds / max(callbacks, 1) * 1e6:.1f} us a callback)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    parser.add_argument("--path", default="keyword", choices=m.PATHS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds a round")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not (args.base / "bankwx_cli").is_dir():
        parser.error(f"--base {args.base}: not a checkout of bankwx (no bankwx_cli/ in it)")
    if args.rounds < 1 or args.duration < 1:
        parser.error("--rounds must be 1 or more, --duration 1 or more")
    wrk = run.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="bankwx-compare-"))
    requests = work / "requests.txt"
    # both servers, warm-up and rounds, at up to 12,000 requests a second
    m.write_requests(requests, int((2 + args.rounds * args.duration) * 2 * 12_000), args.path)
    base = start(args.base.resolve(), work, "base")
    new = start(ROOT, work, "new")
    sent, ratios = 0, []
    try:
        for server in (base, new):
            sent += run.drive(wrk, server, requests, sent, 2, args.connections, 0, 1).issued
        for number in range(1, args.rounds + 1):
            loads = []
            for server in (base, new):
                load = run.drive(wrk, server, requests, sent, args.duration, args.connections,
                                 0, 1)  # fmt: skip
                sent += load.issued
                loads.append(load)
            ratios.append(loads[1].rps / loads[0].rps)
            print(f"round {number}: base {loads[0].rps:6.0f}/s p99 {loads[0].p99_ms:5.1f} ms, "
                  f"new {loads[1].rps:6.0f}/s p99 {loads[1].p99_ms:5.1f} ms, "
                  f"new/base {ratios[-1]:.3f}", flush=True)  # fmt: skip
    finally:
        base.stop()
        new.stop()
    print(
        f"median new/base {statistics.median(ratios):.3f} over {len(ratios)} rounds ({args.path})"
    )
    print(
        f"writes a group commit: base {group_size(work / 'base' / 'bankwx.log')}, "
        f"new {group_size(work / 'new' / 'bankwx.log')}"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Profile `bankwx serve` under the benchmark's load: py-spy on the server while wrk drives it.

    .venv/bin/python bench/callbacks/profile.py --seconds 20 --out bench/out/profile
    .venv/bin/python bench/callbacks/profile.py --no-profile --rounds 3   # A/B: bankwx vs peer
    .venv/bin/python bench/callbacks/profile.py --path default --seconds 15

Same store, messages, pinning and wrk script as run.py, one target (bankwx), on one path of
run.py's (``--path``: keyword, default, click, subscribe or mix; keyword by default). With py-spy
installed (``pip install py-spy``), writes ``OUT.txt`` (collapsed stacks of every thread,
samples of threads that are not running left out) and prints the functions with the most
samples, by thread. py-spy samples from the load core, so the figures printed beside a profile
are a little lower than run.py's. With ``--no-profile``, bankwx and the wechatpy peer are
driven in turn for ``--rounds`` rounds and the ratios printed, with each of bankwx's threads'
CPU per request (user + system, from /proc): a quick A/B check of a change on a machine whose
speed drifts.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import messages as m  # noqa: E402
import run  # noqa: E402

MOST_PER_S = 8000  # more requests a second than bankwx answers on the development machine


def summarize(collapsed: Path, top: int) -> None:
    """Self and total samples per function, per thread, from py-spy's collapsed output."""
    by_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a line py-spy cut short when the server stopped
            continue
        frames = stack.split(";")
        thread = frames[0]
        by_thread[thread][frames[-1]] += int(count)
        for frame in set(frames[1:]):
            totals[thread][frame] += int(count)
    for thread, counter in sorted(by_thread.items(), key=lambda kv: -sum(kv[1].values())):
        samples = sum(counter.values())
        print(f"\n== {thread}: {samples} samples")
        print("-- self")
        for frame, count in counter.most_common(top):
            print(f"{count / samples:6.1%}  {frame}")
        print("-- total")
        for frame, count in totals[thread].most_common(top):
            print(f"{count / samples:6.1%}  {frame}")


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """CPU seconds (user, system) of each thread of pid, by thread name."""
    found: dict[str, tuple[float, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        user, system = found.get(name, (0.0, 0.0))
        found[name] = (user + int(fields[11]) / run.TICKS, system + int(fields[12]) / run.TICKS)
    return found


def show_threads(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], requests: int
) -> None:
    """Each thread's CPU per request (user + system), in microseconds, over one load."""
    parts = []
    for name, (user, system) in after.items():
        user0, system0 = before.get(name, (0.0, 0.0))
        spent = (user - user0) / requests * 1e6, (system - system0) / requests * 1e6
        if sum(spent) > 0:
            parts.append((-sum(spent), f"{name} {spent[0]:.0f}+{spent[1]:.0f} us"))
    print("CPU per request (user+system): " + ", ".join(text for _, text in sorted(parts)))


def show(name: str, load: run.Load) -> None:
    print(
        f"{name:7} {load.rps:6.0f} req/s, p50 {load.p50_ms:5.2f} ms, p90 {load.p90_ms:5.2f} ms, "
        f"p99 {load.p99_ms:5.2f} ms, max {load.max_ms:5.1f} ms, server CPU "
        f"{load.server_cpu:.0%}, other {load.other_cpu:.0%}"
    )


def compare(
    wrk: str, server: run.Server, peer: run.Server, requests: Path, sent: int,
    args: argparse.Namespace, work: Path,
) -> None:  # fmt: skip
    """bankwx and the peer in turn; the ratios of each pair of rounds."""
    run.drive(wrk, peer, requests, 0, 3, args.connections, 0, 1, run.REFERENCE_LINES)
    peer_sent = 0
    for _ in range(args.rounds):
        before = thread_cpu(server.pid)
        ours = run.drive(wrk, server, requests, sent, args.seconds, args.connections, 0, 1)
        show_threads(before, thread_cpu(server.pid), ours.requests)
        theirs = run.drive(wrk, peer, requests, peer_sent, args.seconds, args.connections, 0, 1,
                           run.REFERENCE_LINES)  # fmt: skip
        sent, peer_sent = sent + ours.issued, peer_sent + theirs.issued
        show("bankwx", ours)
        show("peer", theirs)
        ratio, tail = ours.rps / theirs.rps, ours.p99_ms / theirs.p99_ms
        size = sum(f.stat().st_size for f in work.glob("bankwx.db*")) / 2**20
        print(f"ratio   {ratio:.2f} throughput, p99 {tail:.2f}; {sent} messages, {size:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--path", default="keyword", choices=m.PATHS, help="the messages driven (run.py's paths)"
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--messages", type=int,
        help="distinct messages made (default: enough for every round at 8,000 a second, so "
             "that no round runs past them into retries, which take a slower path)",
    )  # fmt: skip
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("bench/out/profile"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--rounds", type=int, default=2, help="with --no-profile")
    args = parser.parse_args()
    if args.messages is None:  # the warm-up's 3 s, then each round of bankwx
        rounds = args.rounds if args.no_profile else 1
        args.messages = max(150_000, int(MOST_PER_S * (3 + rounds * args.seconds)))
    if args.rounds < 1 or args.seconds < 1 or args.messages < 1000:
        parser.error("--rounds must be 1 or more, --seconds 1 or more, --messages 1000 or more")
    wrk = run.ensure_wrk()
    spy_path = shutil.which("py-spy") or shutil.which(
        "py-spy", path=str(Path(sys.executable).parent)
    )
    if not args.no_profile and spy_path is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy (or --no-profile)")
    work = Path(tempfile.mkdtemp(prefix="bankwx-profile-"))
    requests = work / "requests.txt"
    m.write_requests(requests, args.messages, args.path)
    env = run.bankwx_env(work)
    run.prepare_store(env)
    server = run.start_bankwx(env, 1, work)
    peer = run.start_peer("peer", "peers:wechatpy_peer", 1, work) if args.no_profile else None
    spy = None
    try:
        sent = run.drive(wrk, server, requests, 0, 3, args.connections, 0, 1).issued
        if peer is not None:
            compare(wrk, server, peer, requests, sent, args, work)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen(
                [spy_path, "record", "--pid", str(server.pid), "--format", "raw",
                 "--threads", "--rate", "200", "--duration", str(int(args.seconds)),
                 "--output", str(args.out) + ".txt", "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            show("bankwx", run.drive(wrk, server, requests, sent, args.seconds,
                                     args.connections, 0, 1))  # fmt: skip
        wal = work / "bankwx.db-wal"
        print(f"WAL {wal.stat().st_size / 2**20:.1f} MB at the end of the load")
    finally:
        if spy is not None:
            spy.wait()
        server.stop()
        if peer is not None:
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)
    if spy is not None:
        summarize(Path(str(args.out) + ".txt"), args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Start-up time: `bankwx --version` and `bankwx account list` against the framework's floor.

    make bench-startup                       # or: .venv/bin/python bench/startup/run.py
    .venv/bin/python bench/startup/run.py --runs 20

In a temporary folder, a store with one account is made; then, after one warm-up run of each
(page cache, .pyc files: ``PYTHONDONTWRITEBYTECODE`` is dropped), ``--runs`` rounds run each
of these once, interleaved so that a noisy moment hits all alike, with the same interpreter:

- ``bankwx --version``
- ``bankwx account list --format json`` (the store with one account)
- ``python -c "import typer"`` (the command-line framework's own floor)
- ``python -c pass`` (the interpreter's)

It prints each median (and the spread), and each bankwx median's ratio to typer's. The issue's
bar (13): each bankwx median under 2x typer's and under 0.25 s on a quiet machine. Exit status 1
when a run fails or a bar is missed.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
BANKWX = [PYTHON, "-m", "bankwx_cli"]
KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
BAR_RATIO, BAR_SECONDS = 2.0, 0.25


def _console_script() -> list[str]:
    """The installed `bankwx` beside this interpreter (what cron runs), else `python -m`."""
    found = Path(PYTHON).with_name("bankwx")
    return [str(found)] if found.exists() else BANKWX


def _once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall time of one run. No timeout: with one, subprocess polls the child with sleeps of
    up to 50 ms, and the figures come in steps (0.064, 0.114, 0.164 s...)."""
    started = time.perf_counter()
    done = subprocess.run(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started, done.returncode


def _prepare(env: dict[str, str], cwd: Path) -> None:
    bankwx = _console_script()
    steps = [
        ["init"],
        [
            *("account", "add", "main", "--appid", "wx1234567890abcdef"),
            *("--secret", "0123456789abcdef0123456789abcdef", "--token", "tok123"),
            *("--aes-key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
            *("--original-id", "gh_0123456789ab", "--type", "service", "--mode", "safe"),
        ],
    ]
    for args in steps:
        done = subprocess.run([*bankwx, *args], env=env, cwd=cwd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"bankwx {args[0]} failed: {done.stderr.strip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="rounds (default 10)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    folder = Path(tempfile.mkdtemp(prefix="bankwx-startup-"))
    try:
        # BANKWX_* from the caller would change what runs; PYTHONDONTWRITEBYTECODE would make
        # every run compile bankwx from source, where an installed bankwx has its .pyc files.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("BANKWX_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env.update(
            HOME=str(folder),
            BANKWX_DB=str(folder / "bankwx.db"),
            BANKWX_MASTER_KEY=KEY,
            BANKWX_OPERATOR="bench",
        )
        _prepare(env, folder)
        bankwx = _console_script()
        commands = {
            "bankwx --version": [*bankwx, "--version"],
            "bankwx account list": [*bankwx, "account", "list", "--format", "json"],
            "import typer": [PYTHON, "-c", "import typer"],
            "python -c pass": [PYTHON, "-c", "pass"],
        }
        for cmd in commands.values():
            _once(cmd, env, folder)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in commands}
        failed: set[str] = set()
        for _ in range(args.runs):
            for name, cmd in commands.items():
                seconds, code = _once(cmd, env, folder)
                times[name].append(seconds)
                if code != 0:
                    failed.add(f"{name} (exit {code})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    medians = {name: statistics.median(v) for name, v in times.items()}
    floor = medians["import typer"]
    print(f"median of {args.runs} interleaved runs, {PYTHON}")
    print(f"{'command':<22} {'median s':>9} {'min s':>7} {'max s':>7} {'x typer':>8}")
    for name, values in times.items():
        print(
            f"{name:<22} {medians[name]:>9.3f} {min(values):>7.3f} {max(values):>7.3f} "
            f"{medians[name] / floor:>8.2f}"
        )
    missed = [
        name
        for name in ("bankwx --version", "bankwx account list")
        if medians[name] >= BAR_RATIO * floor or medians[name] >= BAR_SECONDS
    ]
    if failed:
        print("failed runs: " + ", ".join(sorted(failed)))
    print(
        f"bar: under {BAR_RATIO:g}x typer and under {BAR_SECONDS:g} s: "
        + ("met" if not missed else "missed by " + ", ".join(missed))
    )
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())

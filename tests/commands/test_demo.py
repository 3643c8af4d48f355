"""`bankwx demo` (what `make demo` runs): the whole tour, narrated on standard output, with the
account's secrets passed on standard input and never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bankwx_cli.commands.demo import DEMO


def test_the_tour_runs_and_narrates_on_stdout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANKWX_")}
    env["HOME"] = str(tmp_path)  # no operator key file or store of the machine is touched
    done = subprocess.run(
        [sys.executable, "-m", "bankwx_cli", "demo", "--keep", str(tmp_path / "tour")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "== 1. The simulator stands in for WeChat" in out
    assert "== 10. Everything is audited" in out and "Demo finished." in out
    # alerts: the bound follower's template message, the unbound customer's SMS, the status
    assert "== 9b. Alerts" in out
    assert "got the template message: 您尾号" in out, out[out.find("== 9b.") :][:3000]
    assert "(SMS gateway) to " in out and "【示例银行】" in out
    assert "bxa_" not in out  # the source's key is never shown
    assert "--secret - " in out and "< secrets.txt" in out
    assert DEMO["secret"] not in out and DEMO["aes_key"] not in out
    assert "Traceback" not in out + done.stderr and "Internal error" not in out + done.stderr
    assert (tmp_path / "tour" / "demo.db").exists()
    # it ends with the messages, agents and alerts reports and a chart file
    assert "== Reports" in out and "bankwx report alerts --since" in out
    assert (tmp_path / "tour" / "messages.html").exists()

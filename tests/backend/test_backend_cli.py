"""`bankwx backend set|show|check`: the configuration, its sealing and audit, permissions,
exit codes, and every bad input refused with the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from backendkit import KEY
from bxtest import Bankwx

from bankwx_cli.sandbox.server import SandboxThread

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def last_line(text: str) -> str:
    """The message (tests run with BANKWX_DEBUG=1, so log lines come first)."""
    return text.splitlines()[-1]


@pytest.fixture
def configured(store_ready: Bankwx, sandbox: SandboxThread) -> Bankwx:
    result = store_ready("backend", "set", "--url", sandbox.url, "--api-key", "-", input=KEY)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"The back-end is now {sandbox.url}.\n"
    return store_ready


def test_set_show_check(configured: Bankwx, sandbox: SandboxThread, db_path: Path) -> None:
    shown = configured("backend", "show", "--format", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["url"] == sandbox.url
    assert data["api_key"] == "set" and data["timeout_ms"] == 3000
    assert data["client_cert"] is None and data["updated_by"] == "alice"
    checked = configured("backend", "check")
    assert checked.exit_code == 0, checked.output
    assert last_line(checked.stderr).startswith(
        f"The back-end at {sandbox.url} answers: status ok, version sandbox-1, "
    )
    as_json = json.loads(configured("backend", "check", "--format", "json").stdout)
    assert as_json["status"] == "ok" and isinstance(as_json["ms"], int)
    calls = httpx.get(sandbox.url + "/sandbox/state", trust_env=False).json()["calls"]
    assert calls == {"/v1/health": 2}


def test_the_key_is_never_shown_logged_or_stored_in_clear(
    configured: Bankwx, db_path: Path
) -> None:
    for fmt in ("json", "plain", "csv", "table", "markdown"):
        shown = configured("backend", "show", "--format", fmt)
        assert shown.exit_code == 0
        assert KEY not in shown.output
    audit = configured("audit", "--action", "backend.set", "--format", "json")
    entries = json.loads(audit.stdout)
    assert len(entries) == 1 and entries[0]["params"]["api_key"] == "****"
    assert KEY not in audit.stdout
    for path in db_path.parent.glob(db_path.name + "*"):
        assert KEY.encode() not in path.read_bytes()


def test_set_keeps_what_is_left_out(configured: Bankwx, sandbox: SandboxThread) -> None:
    result = configured("backend", "set", "--url", sandbox.url + "/", "--timeout-ms", "1500")
    assert result.exit_code == 0, result.output
    data = json.loads(configured("backend", "show", "--format", "json").stdout)
    assert data["timeout_ms"] == 1500 and data["api_key"] == "set"
    assert data["url"] == sandbox.url
    assert configured("backend", "check").exit_code == 0  # the stored key still works


def test_client_certificate(store_ready: Bankwx, tmp_path: Path) -> None:
    cert, key = tmp_path / "wx.pem", tmp_path / "wx.key"
    cert.write_text(PEM_CERT)
    key.write_text(PEM_KEY)
    key.chmod(0o600)
    url = "https://esb.bank.example/wx"
    result = store_ready(
        "backend", "set", "--url", url, "--client-cert", str(cert), "--client-key", str(key)
    )
    assert result.exit_code == 0, result.output
    data = json.loads(store_ready("backend", "show", "--format", "json").stdout)
    assert data == {**data, "url": url, "api_key": None, "client_cert": str(cert),
                    "client_key": str(key)}  # fmt: skip


def test_check_failures_exit_1_saying_why(configured: Bankwx, sandbox: SandboxThread) -> None:
    httpx.post(sandbox.url + "/sandbox/faults", json={"down": True}, trust_env=False)
    down = configured("backend", "check")
    assert down.exit_code == 1
    assert last_line(down.stderr) == (
        f"Error: backend check failed: the back-end at {sandbox.url} (/v1/health) answered "
        "HTTP 503 unavailable."
    )
    httpx.post(sandbox.url + "/sandbox/faults", json={"down": False}, trust_env=False)
    configured("backend", "set", "--url", sandbox.url, "--api-key", "-", input="wrong-key\n")
    refused = configured("backend", "check")
    assert refused.exit_code == 1
    assert "HTTP 401 unauthorized" in refused.stderr
    assert "Check the API key or certificate" in refused.stderr


def test_check_an_unreachable_back_end(store_ready: Bankwx) -> None:
    store_ready("backend", "set", "--url", "http://127.0.0.1:9", "--api-key", "-", input="k")
    result = store_ready("backend", "check")
    assert result.exit_code == 1
    assert last_line(result.stderr) == (
        "Error: backend check failed: cannot reach the back-end at http://127.0.0.1:9 "
        "(/v1/health) (connection refused)."
    )


def test_nothing_configured(store_ready: Bankwx) -> None:
    for command in ("show", "check"):
        result = store_ready("backend", command)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: no back-end is configured. Set one with bankwx backend set --url URL "
            "--api-key -.\n"
        )


def test_agent_reads_but_may_not_set(configured: Bankwx, sandbox: SandboxThread) -> None:
    assert configured("operator", "add", "zhang", "--role", "agent").exit_code == 0
    as_agent = {"BANKWX_OPERATOR": "zhang"}
    assert configured("backend", "show", env=as_agent).exit_code == 0
    assert configured("backend", "check", env=as_agent).exit_code == 0
    refused = configured(
        "backend", "set", "--url", sandbox.url, "--api-key", "-", input="k", env=as_agent
    )
    assert refused.exit_code == 4
    assert "lacks permission 'backend.manage'" in refused.stderr
    audit = json.loads(configured("audit", "--action", "backend.manage", "--format", "json").stdout)
    assert audit[0]["operator"] == "zhang" and audit[0]["outcome"] == "denied"


def test_every_role_may_read() -> None:
    from bankwx_cli.domain.permissions import ROLES, role_allows

    assert all(role_allows(role, "backend.read") for role in ROLES)
    assert [role for role in ROLES if role_allows(role, "backend.manage")] == ["admin"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--url", "http://esb.bank.example", "--api-key", "-"], "k",
         "is plain HTTP to 'esb.bank.example', a host that is not this machine"),
        (["--url", "https://esb.bank.example", "--api-key", "secret"], None,
         "--api-key takes '-' and reads the key from standard input"),
        (["--url", "https://esb.bank.example", "--api-key", "-"], "two words",
         "the back-end API key read from standard input is invalid"),
        (["--url", "https://esb.bank.example", "--api-key", "-"], "",
         "the back-end API key read from standard input is invalid"),
        (["--url", "https://esb.bank.example"], None,
         "the back-end needs an API key or a client certificate"),
        (["--url", "https://esb.bank.example", "--client-cert", "CERT"], None,
         "--client-cert and --client-key go together"),
        (["--url", "https://esb.bank.example", "--client-cert", "MISSING", "--client-key",
          "KEY"], None, "MISSING' is not a file. Give the PEM file's path."),
        (["--url", "https://esb.bank.example", "--client-cert", "KEY", "--client-key",
          "OPEN"], None, "can be read by others (mode 644). Run: chmod 600"),
        (["--url", "https://esb.bank.example", "--client-cert", "TEXT", "--client-key",
          "KEY"], None, "is not a PEM file"),
        (["--url", "not a url", "--api-key", "-"], "k", "is invalid: use https://HOST"),
    ],
)  # fmt: skip
def test_bad_input_is_refused(
    store_ready: Bankwx, tmp_path: Path, args: list[str], stdin: str | None, message: str
) -> None:
    files = {"CERT": PEM_CERT, "KEY": PEM_KEY, "OPEN": PEM_KEY, "TEXT": "hello\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    os.chmod(tmp_path / "KEY", 0o600)
    os.chmod(tmp_path / "OPEN", 0o644)
    args = [str(tmp_path / a) if a in {*files, "MISSING"} else a for a in args]
    result = store_ready("backend", "set", *args, input=stdin)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
    assert store_ready("backend", "show").exit_code == 1  # nothing was stored


@pytest.mark.parametrize("value", ["20000", "0"])
def test_a_timeout_out_of_range_is_a_usage_error(store_ready: Bankwx, value: str) -> None:
    args = ["--url", "https://esb.bank.example", "--api-key", "-", "--timeout-ms", value]
    result = store_ready("backend", "set", *args, input="k")
    assert result.exit_code == 2 and "Invalid value for '--timeout-ms'" in result.stderr
    assert store_ready("backend", "show").exit_code == 1  # nothing was stored


def test_help_has_examples(bankwx: Bankwx) -> None:
    for command in ("set", "show", "check", "sandbox"):
        result = bankwx("backend", command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.stdout


def test_the_context_keeps_one_adapter_until_the_back_end_changes(
    configured: Bankwx, sandbox: SandboxThread
) -> None:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain import backend
    from bankwx_cli.settings import from_environment

    app = AppContext(from_environment())
    try:
        first = app.backend
        assert app.backend is first
        assert first.timeout_s == 3.0 and repr(first) == f"BackendClient({sandbox.url!r})"
        backend.set_(app, sandbox.url, timeout_ms=1000)
        assert app.backend is not first and app.backend.timeout_s == 1.0
        assert app.backend.health().status == "ok"
    finally:
        app.close()


def test_operators_limited_to_some_accounts(configured: Bankwx, sandbox: SandboxThread) -> None:
    """The back-end serves the whole store: a limited agent reads it; only an administrator
    with every account may change it."""
    from bxtest import add_account_args

    for name in ("main", "cards"):
        assert configured(*add_account_args(name)).exit_code == 0
    configured("operator", "add", "li", "--role", "agent", "--accounts", "main")
    configured("operator", "add", "wang", "--role", "admin", "--accounts", "main")
    assert configured("backend", "show", env={"BANKWX_OPERATOR": "li"}).exit_code == 0
    refused = configured(
        "backend", "set", "--url", sandbox.url, "--timeout-ms", "900",
        env={"BANKWX_OPERATOR": "wang"},
    )  # fmt: skip
    assert refused.exit_code == 4
    assert "only an operator with every account may do this" in refused.stderr


def test_backend_show_starts_light(configured: Bankwx) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.argv = ['bankwx', 'backend', 'show', '--format', 'json']\n"
        "from bankwx_cli.main import run\n"
        "try:\n    run()\n"
        "finally:\n"
        "    sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    modules = set(done.stderr.split())
    assert "bankwx_cli.commands.backend" in modules
    for heavy in ("requests", "prometheus_client", "uvicorn", "bankwx_cli.sandbox", "wechatpy"):
        assert heavy not in modules

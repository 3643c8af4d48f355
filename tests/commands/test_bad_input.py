"""Every command answers bad input (issue 14, Done when).

A table of bad inputs, most of it generated from the commands' own parameter declarations (the
real command tree, walked as ``bankwx --help`` walks it): an invalid choice for every choice, a
number below and above every range and a word for every number, a missing path, a directory and
a malformed file for every path, an unknown account for every parameter naming one, an unknown
id for every id. Each case runs through the real CLI on a real store, with the simulator as
WeChat, as an operator would (no --debug), and must give: no ``Internal error`` and no
traceback, exit 2 for a usage error and 1 for a name or an id that does not exist, and nothing
half-written (the store's rows and the folder's files as they were).

Beside it, the cases the issue lists by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer
from bxprocs import Sim
from bxtest import APPID, ORIGINAL_ID, SECRET, TEST_KEY, TOKEN, add_account_args
from typer.testing import CliRunner, Result

from bankwx_cli.commands import _cli
from bankwx_cli.main import app

OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
NOPE = "nope-x"  # an account, an operator or a tag that does not exist
NO_ID = "999999"  # a row id that does not exist

# Values for the parameters a command requires, by command and parameter name; a case replaces
# the one it is about. "{tmp}" is the case's folder, "{menu}" a valid menu file in it.
REQUIRED: dict[str, dict[str, str | bool]] = {
    "backup": {"file": "{tmp}/copy.db"},
    "account add": {
        "name": "z",
        "appid": "wx1234567890abcd02",
        "secret": SECRET,
        "token": TOKEN,
        "original_id": "gh_0123456789a2",
    },
    "account update": {"name": "main"},
    "account remove": {"name": "main", "yes": True},
    "account set": {"name": "main", "key": "welcome", "value": "hi"},
    "account unset": {"name": "main", "key": "welcome"},
    "operator add": {"name": "bob", "role": "agent"},
    "operator update": {"name": "alice"},
    "operator remove": {"name": "alice", "yes": True},
    "org add": {"name": "总行"},
    "sim register": {"name": "main"},
    "sim open": {"url": "http://127.0.0.1:8080/bind/main"},
    "keyword add": {"pattern": "x", "match": "exact", "reply_text": "y"},
    "keyword remove": {"rule_id": "1", "yes": True},
    "follower show": {"openid": OPENID},
    "follower bind": {"openid": OPENID, "customer": "C000001"},
    "follower unbind": {"openid": OPENID},
    "follower tag": {"openids": OPENID, "tag": "VIP"},
    "follower untag": {"openids": OPENID, "tag": "VIP"},
    "follower block": {"openids": OPENID},
    "follower unblock": {"openids": OPENID},
    "tag create": {"name": "VIP"},
    "tag rename": {"old": "VIP", "new": "VIP2"},
    "tag delete": {"name": "VIP", "yes": True},
    "menu validate": {"file": "{menu}"},
    "menu plan": {"file": "{menu}"},
    "menu deploy": {"file": "{menu}", "yes": True},
    "menu rollback": {"yes": True},
    "menu delete": {"yes": True},
    "menu approve": {"version": "1"},
    "menu reject": {"version": "1"},
    "messages purge": {"yes": True},
    "messages export": {"openid": OPENID},
    "outbox retry": {"unit_id": "1"},
    "broadcast create": {"text": "通知", "to_all": True},
    "broadcast edit": {"broadcast_id": "1"},
    "broadcast submit": {"broadcast_id": "1"},
    "broadcast approve": {"broadcast_id": "1"},
    "broadcast reject": {"broadcast_id": "1", "reason": "no"},
    "broadcast cancel": {"broadcast_id": "1"},
    "broadcast preview": {"broadcast_id": "1", "to": OPENID},
    "broadcast send": {"broadcast_id": "1", "yes": True},
    "broadcast status": {"broadcast_id": "1"},
    "broadcast show": {"broadcast_id": "1"},
    "template show": {"template_id": "T1"},
    "keyword test": {"text": "你好"},
    "sim send": {"text": "你好"},
    "store set": {"setting": "identity", "value": "declared"},
    "agent add": {"name": "alice"},
    "agent update": {"name": "alice", "max_sessions": "3"},
    "agent remove": {"name": "alice", "yes": True},
    "agent status": {"state": "online"},
    "agent take": {},
    "agent reply": {"session": "1", "text": "你好"},
    "agent transfer": {"session": "1", "to": "li"},
    "agent close": {"session": "1"},
    "agent group add": {"name": "retail"},
    "agent group update": {"name": "retail", "sla": "30"},
    "agent group remove": {"name": "retail", "yes": True},
    "backend set": {"url": "http://127.0.0.1:9"},
    "branch import": {"file": "{menu}"},
    "branch add": {
        "branch_id": "B1",
        "name": "总行",
        "type_": "branch",
        "lat": "31.2",
        "lng": "121.5",
    },
    "branch show": {"branch_id": "B1"},
    "branch remove": {"branch_id": "B1", "yes": True},
    "branch nearest": {"lat": "31.2", "lng": "121.5"},
    "alert source add": {"name": "core"},
    "alert source remove": {"name": "core", "yes": True},
    "alert source rotate": {"name": "core"},
    "alert rule add": {
        "type_": "transaction",
        "template": "T1",
        "field": "time={occurred_at|time}",
    },
    "alert rule remove": {"rule_id": "1", "yes": True},
    "alert rule test": {"type_": "transaction", "event": "{menu}"},
    "alert push": {"file": "{menu}", "source": "core"},
    "alert show": {"event_id": "e1"},
}
# A parameter that goes instead of a required one: (command, parameter) -> the one it replaces.
INSTEAD = {("keyword add", "reply_news"): "reply_text", ("broadcast create", "openids"): "to_all"}
# Commands that serve until stopped (a wrongly accepted value would start a server): run in a
# process of their own, under a timeout. The demo runs a whole tour: only its usage errors.
SERVERS = {"serve", "sim api", "sim chat"}
TOURS = {"demo"}
# Ids that name rows: an unknown one is "not found" (exit 1).
ID_PARAMS = {"broadcast_id", "rule_id", "unit_id", "version", "template_id"}
# Global options the hand-written cases cover (the key file, with the master key unset).
SKIPPED = {("", "key_file"), ("", "version")}
# Times given by people (ISO 8601; without an offset, the bank's time).
TIME_PARAMS = {"since", "until", "at", "before"}
# Numbers that need no range: a counter, and a test-only clock shift (either sign).
UNRANGED = {("", "verbose"), ("", "test_clock_offset_s")}


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments after ``bankwx``, the exit code wanted (None: any but 0)."""

    id: str
    args: tuple[str, ...]
    want: int | None
    env: dict[str, str] = field(default_factory=dict)
    process: bool = False  # run as a process of its own, under a timeout
    timeout: float = 20.0
    says: str | None = None  # a text the output must hold
    never_says: str | None = None  # a text it must not
    untouched: tuple[str, ...] = ()  # paths (with {tmp}) that must stay as they were
    # tables that may change: a resumable pass records where it stopped; an attempt is audited
    may_change: tuple[str, ...] = ()


# --- the command tree ------------------------------------------------------------------------


def _tree() -> Iterator[tuple[str, Any]]:
    """(path, command) of every command, as `bankwx --help` lists them."""
    root = typer.main.get_command(app)
    yield "", root

    def walk(group: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        for name in group.list_commands(None):
            command = group.get_command(None, name)
            path = f"{prefix} {name}".strip()
            if hasattr(command, "list_commands"):
                yield from walk(command, path)
            else:
                yield path, command

    yield from walk(root, "")


COMMANDS: dict[str, Any] = dict(_tree())


def _kind(param: Any) -> Any:
    return param.type_descriptor.annotation


def _info(param: Any) -> Any:
    return param.type_descriptor.parameter_info


def _is_number(param: Any) -> bool:
    return _kind(param) in (int, float) and not getattr(param, "count", False)


def _names(param: Any, completer: Callable[..., list[str]]) -> bool:
    return _info(param).autocompletion is completer


def invocation(path: str, **given: str | bool | None) -> tuple[str, ...]:
    """`bankwx PATH ...` with the required parameters (REQUIRED) and the given ones."""
    command = COMMANDS[path]
    values: dict[str, str | bool | None] = dict(REQUIRED.get(path, {}))
    values.update(given)
    for name in given:
        values.pop(INSTEAD.get((path, name), ""), None)
    options: list[str] = []
    positional: list[str] = []
    for param in command.params:
        value = values.get(param.name)
        if value is None or value is False:
            continue
        if param.param_type_name == "argument":
            positional.append(str(value))
        elif value is True:
            options.append(param.opts[0])
        else:
            options += [param.opts[0], str(value)]
    words = path.split() if path else []
    if not path:  # a global option: before a harmless command
        return (*options, "keyword", "list")
    return (*words, *options, *(["--", *positional] if positional else []))


def _generated() -> Iterator[Case]:
    for path, command in COMMANDS.items():
        for param in command.params:
            if (path, param.name) not in SKIPPED:
                yield from _cases_of(path, command, param)


def _cases_of(path: str, command: Any, param: Any) -> Iterator[Case]:
    """The bad values of one parameter, from its declaration."""
    name, kind, info = param.name, _kind(param), _info(param)
    label = f"{path or 'bankwx'} {param.opts[0] if param.opts else name}"
    server = path in SERVERS

    def case(tag: str, value: str, want: int | None, **extra: Any) -> Case:
        return Case(
            f"{label}={tag}",
            invocation(path, **{name: value}),
            want,
            process=server,
            timeout=8 if server else 20,
            **extra,
        )

    if path in TOURS and not (kind is Path and not info.file_okay):
        return  # the demo runs a tour: only --keep given a file (a usage error)
    enum = kind if isinstance(kind, type) and issubclass(kind, Enum) else None
    if getattr(kind, "__origin__", None) is list:
        (item,) = kind.__args__
        enum = item if isinstance(item, type) and issubclass(item, Enum) else None
    if enum is not None:
        yield case("bogus", "bogus", 2, says="Invalid value")
    if _is_number(param):
        yield case("word", "many", 2, says="Invalid value")
        step = 1 if kind is int else 0.5
        if param.min is not None:
            yield case("below", str(param.min - step), 2, says="Invalid value")
        if param.max is not None:
            yield case("above", str(param.max + step), 2, says="Invalid value")
    if kind is Path:
        if not info.file_okay:  # a folder
            yield case("a-file", "{tmp}/menu.json", 2, says="Invalid value")
        elif info.exists:  # a file to read
            yield case("missing", "{tmp}/missing.yaml", 2, says="does not exist")
            if not info.dir_okay:
                yield case("a-folder", "{tmp}/adir", 2, says="is a directory")
            yield case("malformed", "{tmp}/garbage.bin", 1)
        else:  # a file to write
            yield case(
                "missing-folder", "{tmp}/missing/sub/x.out", None, untouched=("{tmp}/missing",)
            )
            yield case("a-folder", "{tmp}/adir", None, untouched=("{tmp}/adir",))
    if name in TIME_PARAMS and kind is str:
        yield case("not-a-time", "yesterday", 1)
        yield case("before-year-1", "0001-01-01T00:00", 1)
    envvar = getattr(param, "envvar", None)
    if not path and isinstance(envvar, str) and (enum or kind in (bool, int, float)):
        yield Case(f"{envvar}=word", ("keyword", "list"), 2, env={envvar: "many"}, says=envvar)
    if _names(param, _cli.complete_account):
        has_id = any(p.name in ID_PARAMS for p in command.params)
        yield case("unknown", NOPE, 1, says=None if has_id else NOPE)
    if _names(param, _cli.complete_operator) and param.param_type_name == "argument":
        yield case("unknown", NOPE, 1, says=NOPE)
    if name in ID_PARAMS and path:
        yield case("unknown", NO_ID, 1, says=NO_ID)


def _by_hand() -> Iterator[Case]:
    """The issue's own list (Why, Bad input), beyond what the declarations give."""
    secret_args = ["--secret", SECRET, "--token", TOKEN]
    server = {"process": True, "timeout": 8}
    yield Case("serve --port 99999", ("serve", "--port", "99999"), 2, **server)
    yield Case("serve --port -1", ("serve", "--port", "-1"), 2, **server)
    yield Case("sim api --port 99999", ("sim", "api", "--port", "99999"), 2, **server)
    yield Case(
        "sim api --host 0.0.0.0",
        ("sim", "api", "--host", "0.0.0.0", "--port", "0"),  # noqa: S104 - the refused host
        None,
        process=True,
        timeout=8,
    )
    yield Case(
        "account check with an API base that is not a URL",
        ("account", "check"),
        None,
        env={"BANKWX_API_BASE": "not-a-url"},
        never_says="busy",
        says="BANKWX_API_BASE",
        timeout=10,
    )
    yield Case(
        "account check with WeChat refusing connections",
        ("account", "check"),
        1,
        env={"BANKWX_API_BASE": "http://127.0.0.1:9"},
        says="127.0.0.1:9",
        timeout=10,
    )
    sync = ("follower_sync",)  # the pass, stopped with its progress saved
    attempt = ("audit", "meta")  # the failed batch, audited
    for args, may_change in (  # every command that calls WeChat names the address
        (("follower", "sync"), sync),
        (("follower", "sync", "--full"), sync),
        (("follower", "block", OPENID), attempt),
        (("template", "sync"), ()),
        (("tag", "create", "VIP"), ()),
        (("agent", "sync"), ()),
    ):
        yield Case(
            f"{' '.join(args)} with WeChat refusing connections",
            args,
            1,
            env={"BANKWX_API_BASE": "http://127.0.0.1:9"},
            says="127.0.0.1:9",
            never_says="WeChat -1",
            timeout=15,
            may_change=may_change,
        )
    yield Case(
        "menu pull -o in a missing folder",
        ("menu", "pull", "-o", "{tmp}/missing/x.yaml"),
        None,
        untouched=("{tmp}/missing",),
    )
    yield Case(
        "key file is a folder (account check)",
        ("account", "check"),
        None,
        env={"BANKWX_KEY_FILE": "{tmp}/keydir", "BANKWX_MASTER_KEY": ""},
        never_says="chmod",
    )
    yield Case(
        "key file is a folder (init)",
        ("--db", "{tmp}/k.db", "init"),
        None,
        env={"BANKWX_KEY_FILE": "{tmp}/keydir", "BANKWX_MASTER_KEY": ""},
        never_says="chmod",
        untouched=("{tmp}/k.db",),
    )
    yield Case(
        "init in a missing folder",
        ("--db", "{tmp}/nowhere/sub/x.db", "init"),
        None,
        says="nowhere/sub",
        untouched=("{tmp}/nowhere",),
    )
    yield Case(
        "init on a folder",
        ("--db", "{tmp}/adir", "init"),
        None,
        never_says="store exists",
        untouched=("{tmp}/adir",),
    )
    yield Case(
        "init on a file that is not SQLite",
        ("--db", "{tmp}/notes.db", "init"),
        None,
        never_says="store exists",
        untouched=("{tmp}/notes.db",),
    )
    yield Case(
        "a second account with the same appid",
        ("account", "add", "other", "--appid", APPID, *secret_args)
        + ("--original-id", "gh_0123456789ac", "--mode", "plain"),
        1,
    )
    yield Case(
        "a second account with the same original id",
        ("account", "add", "other", "--appid", "wx1234567890abcd03", *secret_args)
        + ("--original-id", ORIGINAL_ID, "--mode", "plain"),
        1,
    )
    yield Case(
        "a keyword rule identical to another",
        ("keyword", "add", "你好", "--match", "exact", "--reply-text", "hi"),
        1,
    )
    yield Case(
        "broadcast create --openids with a malformed openid",
        ("broadcast", "create", "--text", "通知", "--openids", "{tmp}/openids.txt"),
        1,
        says="1 line is not an openid: line 2 ('not an openid')",
    )
    yield Case(
        "broadcast create --openids with one openid",
        ("broadcast", "create", "--text", "通知", "--openids", "{tmp}/one-openid.txt"),
        1,
    )
    for name, args in {
        "--type": ("--type", "enterprise"),
        "--mode": ("--mode", "secret"),
        "--token-mode": ("--token-mode", "fast"),
    }.items():
        yield Case(
            f"account add {name} not a choice",
            (*add_account_args("z", mode="plain"), *args),
            2,
            says=f"Invalid value for '{name}'",
        )
    yield Case(
        "keyword add --match fuzzy",
        ("keyword", "add", "x", "--match", "fuzzy", "--reply-text", "y"),
        2,
        says="Invalid value for '--match'",
    )
    yield Case(
        "operator add --role king",
        ("operator", "add", "bob", "--role", "king"),
        2,
        says="Invalid value for '--role'",
    )
    yield Case(
        "follower list --scene TELEPATHY",
        ("follower", "list", "--scene", "TELEPATHY"),
        2,
        says="--scene 'TELEPATHY' is invalid: use one of ADD_SCENE_SEARCH",
    )
    yield Case("follower list --limit 0", ("follower", "list", "--limit", "0"), 2)
    yield Case("messages list --limit -5", ("messages", "list", "--limit", "-5"), 2)
    yield Case("follower sync --threads 99", ("follower", "sync", "--threads", "99"), 2)
    yield Case("account list --format xml", ("account", "list", "--format", "xml"), 2)
    yield Case(
        "BANKWX_FORMAT=xml", ("account", "list"), 2, env={"BANKWX_FORMAT": "xml"}, says="xml"
    )
    yield Case(
        "an id beyond SQLite's integers",
        ("broadcast", "show", str(2**70)),
        2,
        says="Invalid value",
    )


CASES = [*_generated(), *_by_hand()]


def _param(case: Case) -> Any:
    return pytest.param(case, id=case.id)


# --- running a case ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store every case starts from (made once, copied for each): alice administrator,
    account 'main', a keyword rule."""
    folder = tmp_path_factory.mktemp("bad-input")
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("BANKWX_")}
    env.update(
        BANKWX_DB=str(folder / "bankwx.db"),
        BANKWX_KEY_FILE=str(folder / "master.key"),
        BANKWX_MASTER_KEY=TEST_KEY,
        BANKWX_OPERATOR="alice",
    )
    runner = CliRunner()
    for args in (
        ("init",),
        add_account_args(),
        ("keyword", "add", "你好", "--match", "exact", "--reply-text", "hi"),
    ):
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
    conn = sqlite3.connect(folder / "bankwx.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return folder / "bankwx.db"


@pytest.fixture
def prepared(tmp_path: Path, template: Path, sim: Sim, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The case's store (a copy of the template) with the simulator as WeChat, account 'main'
    registered with it, and files a case may name."""
    monkeypatch.setenv("BANKWX_RETRY_BUDGET_S", "2")
    monkeypatch.delenv("BANKWX_DEBUG")  # as an operator runs it: errors as messages
    shutil.copyfile(template, tmp_path / "bankwx.db")
    sim.register()
    (tmp_path / "adir").mkdir()
    (tmp_path / "keydir").mkdir(mode=0o700)
    (tmp_path / "menu.json").write_text(
        '{"button":[{"type":"click","name":"账户查询","key":"BALANCE"}]}', encoding="utf-8"
    )
    (tmp_path / "garbage.bin").write_bytes(b"\x00\xff{[: not yaml, not json\n\xfe" * 8)
    (tmp_path / "notes.db").write_text("this is not a SQLite file\n", encoding="utf-8")
    (tmp_path / "openids.txt").write_text(f"{OPENID}\nnot an openid\n", encoding="utf-8")
    (tmp_path / "one-openid.txt").write_text(f"{OPENID}\n", encoding="utf-8")
    return tmp_path


def _store_rows(db: Path) -> dict[str, str]:
    """Each table's rows, digested (the caches of WeChat's tokens and call counts, and the API
    report's roll-up of those counts, left out)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] not in ("tokens", "api_calls", "rollup_api", "rollup_api_latency")
        ]
        digests = {}
        for name in names:
            rows = conn.execute(f'SELECT * FROM "{name}"')  # noqa: S608 - the store's names
            digests[name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
        return digests
    finally:
        conn.close()


def _files(folder: Path) -> dict[str, str]:
    """The folder's files and their digests (the store's own files left out)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.name.startswith("bankwx.db") or path.is_dir():
            found[str(path.relative_to(folder))] = "dir" if path.is_dir() else ""
            continue
        found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _run(case: Case, tmp: Path) -> tuple[int, str]:
    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp)).replace("{menu}", str(tmp / "menu.json"))

    args = [fill(a) for a in case.args]
    env = {k: fill(v) for k, v in case.env.items()}
    if case.process:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bankwx_cli", *args],
                capture_output=True,
                text=True,
                timeout=case.timeout,
                env={**os.environ, **env},
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"no answer within {case.timeout} s (a server started?)")
        return done.returncode, done.stdout + done.stderr
    result: Result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_answered(case: Case, prepared: Path) -> None:
    db = prepared / "bankwx.db"
    if case.args[:2] == ("menu", "pull"):  # a live menu to pull
        deployed = CliRunner().invoke(app, ["menu", "deploy", str(prepared / "menu.json"), "--yes"])
        assert deployed.exit_code == 0, deployed.output
    rows, files = _store_rows(db), _files(prepared)
    untouched = {
        p: (Path(p).exists(), _files(Path(p)) if Path(p).is_dir() else None)
        for p in (u.replace("{tmp}", str(prepared)) for u in case.untouched)
    }
    code, output = _run(case, prepared)
    print(f"exit {code}: {output}")  # shown when the case fails, or with -rA
    assert "Internal error" not in output, output
    assert "Traceback" not in output, output
    assert code != 0, output
    if case.want is not None:
        assert code == case.want, output
    if case.says is not None:
        assert case.says in output, output
    if case.never_says is not None:
        assert case.never_says.lower() not in output.lower(), output
    after = _store_rows(db)
    for table in case.may_change:
        after.pop(table, None)
        rows.pop(table, None)
    assert after == rows, "the store changed"
    assert _files(prepared) == files, "files were written"
    for path, (existed, listing) in untouched.items():
        now = Path(path)
        assert now.exists() == existed, f"{path} was created"
        if listing is not None:
            assert _files(now) == listing, f"{path} changed"


# --- what the declarations promise -----------------------------------------------------------


def _numbers() -> Iterator[Any]:
    for path, command in COMMANDS.items():
        for param in command.params:
            if not _is_number(param) or (path, param.name) in UNRANGED:
                continue
            yield pytest.param(param, id=f"{path} {param.opts[0]}")


@pytest.mark.parametrize("param", list(_numbers()))
def test_every_number_has_a_range(param: Any) -> None:
    """A number outside what it can mean is a usage error (exit 2), so every one says which."""
    assert param.min is not None or param.max is not None


def test_the_table_covers_every_command() -> None:
    """Every command's required parameters have values, so every command is in the table."""
    for path, command in COMMANDS.items():
        if path in SERVERS | TOURS or not path:
            continue
        missing = [
            p.name for p in command.params if p.required and p.name not in REQUIRED.get(path, {})
        ]
        assert missing == [], f"{path}: add {missing} to REQUIRED"
    assert len(CASES) > 100


def test_choices_are_the_domains() -> None:
    """The choices of the command line are the values the domain accepts."""
    from bankwx_cli.commands import account, keyword, operator, outbox
    from bankwx_cli.domain import accounts, keywords
    from bankwx_cli.domain import outbox as outbox_domain
    from bankwx_cli.domain.permissions import ROLES

    pairs: list[tuple[type[Enum], tuple[str, ...]]] = [
        (account.AccountType, accounts.TYPES),
        (account.Mode, accounts.MODES),
        (account.TokenMode, accounts.TOKEN_MODES),
        (keyword.Match, keywords.MATCHES),
        (operator.Role, tuple(ROLES)),
        (outbox.Lane, outbox_domain.LANES),
        (outbox.State, outbox_domain.STATES),
    ]
    for enum, values in pairs:
        assert tuple(e.value for e in enum) == tuple(values), enum

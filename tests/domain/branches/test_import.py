"""`bankwx branch import|list|add|remove`: all or nothing, --valid-only, every bad line named,
--replace and --dry-run, permissions by role and by row; the file parser under hypothesis."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from bxtest import Bankwx, add_account_args
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.domain import branches
from bankwx_cli.models.branches import Branch

HEADER = "id,name,type,lat,lng,address,phone,hours,services\n"
GOOD = (
    "SH001,人民广场支行,branch,31.230416,121.473701,人民大道185号,021-63211234,9:00-17:00,开户;理财\n"
    "ATM01,人民广场自助银行,atm,31.2312,121.4745,地铁站内,,24小时,取款\n"
)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def ids(bankwx: Bankwx, *args: str) -> list[str]:
    out = ok(bankwx("branch", "list", "--format", "json", *args)).stdout
    return [row["id"] for row in json.loads(out)]


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    """Two good rows and a bad row of each kind, a blank line, one row not UTF-8."""
    lines = [
        HEADER,
        GOOD,  # lines 2 and 3
        "B1,坏坐标,branch,91.5,121.47,,,,\n",  # 4: latitude out of range
        "B2,坏坐标,atm,31.2,abc,,,,\n",  # 5: longitude not a number
        "B3,未知类型,bank,31.2,121.4,,,,\n",  # 6: unknown type
        "SH001,重复,branch,31.2,121.4,,,,\n",  # 7: duplicate id (line 2)
        "\n",  # 8: blank, ignored
        "B4,too,few\n",  # 9: too few fields
        "OK2,东方明珠,atm,31.2397,121.4998,,,,\n",  # 10: good
    ]
    data = "".join(lines).encode() + b"B5," + "南京".encode("gbk") + b",atm,1,2,,,,\n"
    path = tmp_path / "bad.csv"
    path.write_bytes(data)  # line 11: not UTF-8
    return path


EXPECTED_BAD = {
    4: "bad coordinates: lat '91.5' is not a number from -90 to 90",
    5: "bad coordinates: lng 'abc' is not a number from -180 to 180",
    6: "unknown type 'bank': use branch or atm",
    7: "duplicate id 'SH001' (first on line 2)",
    9: "3 fields where the header has 9",
    11: "not UTF-8 text: save the file as UTF-8",
}


def test_bad_rows_import_nothing_by_default(with_account: Bankwx, bad_file: Path) -> None:
    bankwx = with_account
    result = bankwx("branch", "import", str(bad_file))
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[:-1] == [f"line {n}: {why}" for n, why in EXPECTED_BAD.items()]
    assert lines[-1] == "Import bad.csv into 'main': 0 imported, 3 skipped, 6 bad."
    assert ids(bankwx) == []
    as_json = bankwx("branch", "import", str(bad_file), "--format", "json")
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert data["imported"] == 0 and data["skipped"] == 3
    assert data["errors"] == [{"line": n, "reason": why} for n, why in EXPECTED_BAD.items()]


def test_valid_only_imports_exactly_the_valid_rows(with_account: Bankwx, bad_file: Path) -> None:
    bankwx = with_account
    result = bankwx("branch", "import", str(bad_file), "--valid-only", "--format", "json")
    assert result.exit_code == 1, result.output  # bad rows, even so
    data = json.loads(result.stdout)
    assert (data["imported"], data["skipped"], len(data["errors"])) == (3, 0, 6)
    assert result.stderr.splitlines()[-1] == (
        "Import bad.csv into 'main': 3 imported, 0 skipped, 6 bad."
    )
    assert ids(bankwx) == ["ATM01", "OK2", "SH001"]
    assert ids(bankwx, "--type", "atm") == ["ATM01", "OK2"]
    first = json.loads(bankwx("branch", "list", "--format", "json").stdout)[2]
    assert first == {
        "id": "SH001", "name": "人民广场支行", "type": "branch", "lat": 31.230416,
        "lng": 121.473701, "address": "人民大道185号", "phone": "021-63211234",
        "hours": "9:00-17:00", "services": ["开户", "理财"], "account": "main",
    }  # fmt: skip


def test_a_wrong_header_or_encoding_imports_nothing(with_account: Bankwx, write: Any) -> None:
    bankwx = with_account
    wrong = write("wrong.csv", "id,name,kind,lat,lng,address,phone,hours,services\n" + GOOD)
    result = bankwx("branch", "import", str(wrong), "--valid-only", "--replace")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "line 1: wrong header (missing type; unknown 'kind'): the first line must be "
        "id,name,type,lat,lng,address,phone,hours,services"
    )
    assert result.stderr.splitlines()[-1].endswith("0 imported, 0 skipped, 1 bad.")
    gbk = write("gbk.csv", "")
    gbk.write_bytes((HEADER + GOOD).encode("gbk"))
    result = bankwx("branch", "import", str(gbk), "--format", "json")
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert errors == [{"line": n, "reason": "not UTF-8 text: save the file as UTF-8"}
                      for n in (2, 3)]  # fmt: skip
    unreadable = write("locked.csv", HEADER + GOOD)
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root reads it anyway
        locked = bankwx("branch", "import", str(unreadable))
        assert locked.exit_code == 1
        assert locked.stderr == (
            f"Error: cannot read the branch file '{unreadable}' (Permission denied).\n"
        )
    assert bankwx("branch", "import", str(unreadable.parent)).exit_code == 2  # a directory
    assert bankwx("branch", "import", "nowhere.csv").exit_code == 2
    empty = write("empty.csv", "")
    result = bankwx("branch", "import", str(empty))
    assert result.exit_code == 1 and "line 1: wrong header" in result.stderr
    assert ids(bankwx) == []


def test_a_bom_dry_run_existing_ids_and_replace(with_account: Bankwx, write: Any) -> None:
    bankwx = with_account
    path = write("b.csv", "")
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + GOOD).encode())
    dry = bankwx("branch", "import", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stderr == "Dry run of import b.csv into 'main': 2 to import, 0 skipped, 0 bad.\n"
    assert ids(bankwx) == []
    ok(bankwx("branch", "import", str(path)))
    assert ids(bankwx) == ["ATM01", "SH001"]
    again = ok(bankwx("branch", "import", str(path)))
    assert again.stderr.endswith("0 imported, 2 skipped, 0 bad.\n")  # ids the account has
    other = write("c.csv", HEADER + "SH001,人民广场支行（新）,branch,31.23,121.47,,,,\n"
                  "N1,新网点,branch,31.3,121.5,,,,\n")  # fmt: skip
    replaced = ok(bankwx("branch", "import", str(other), "--replace"))
    assert replaced.stderr.splitlines() == [
        "Removed 1 branches not in the file.",
        "Import c.csv into 'main': 2 imported, 0 skipped, 0 bad.",
    ]
    rows = json.loads(bankwx("branch", "list", "--format", "json").stdout)
    assert [(r["id"], r["name"]) for r in rows] == [
        ("N1", "新网点"),
        ("SH001", "人民广场支行（新）"),
    ]
    near = json.loads(bankwx("branch", "nearest", "--lat", "31.23", "--lng", "121.47",
                             "--format", "json").stdout)  # fmt: skip
    assert [r["id"] for r in near] == ["SH001", "N1"]  # the spatial index followed


def test_add_and_remove(with_account: Bankwx) -> None:
    bankwx = with_account
    added = bankwx("branch", "add", "X1", "--name", "外滩支行", "--type", "branch", "--lat",
                   "31.24", "--lng", "121.49", "--hours", "9:00-17:00",
                   "--format", "json")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["hours"] == "9:00-17:00"
    again = bankwx("branch", "add", "X1", "--name", "x", "--type", "atm", "--lat", "1", "--lng",
                   "1")  # fmt: skip
    assert again.exit_code == 1
    assert again.stderr.startswith("Error: account 'main' has a branch 'X1': remove it first")
    for bad, code in ((["--type", "bank"], 2), (["--lat", "95"], 2), (["--lng", "200"], 2)):
        args = {"--type": "atm", "--lat": "1", "--lng": "1"}
        args[bad[0]] = bad[1]
        flat = [x for pair in args.items() for x in pair]
        result = bankwx("branch", "add", "X2", "--name", "x", *flat)
        assert result.exit_code == code, (bad, result.output)
    empty = bankwx("branch", "add", "X2", "--name", " ", "--type", "atm", "--lat", "1", "--lng",
                   "1")  # fmt: skip
    assert empty.exit_code == 1 and empty.stderr == "Error: the name is empty\n"
    shown = json.loads(ok(bankwx("branch", "show", "X1", "--format", "json")).stdout)
    assert (shown["id"], shown["name"], shown["lat"]) == ("X1", "外滩支行", 31.24)
    missing = bankwx("branch", "show", "X9")
    assert missing.exit_code == 1
    assert missing.stderr == "Error: no branch 'X9'. See bankwx branch list.\n"
    assert bankwx("branch", "remove", "X1").exit_code == 1  # off a terminal: --yes
    ok(bankwx("branch", "remove", "X1", "--yes"))
    gone = bankwx("branch", "remove", "X1", "--yes")
    assert gone.exit_code == 1
    assert gone.stderr == "Error: no branch 'X1'. See bankwx branch list.\n"
    audit = json.loads(bankwx("audit", "--format", "json").stdout)
    assert {"branch.add", "branch.remove"} <= {a["action"] for a in audit}


def test_roles_and_rows(with_account: Bankwx, write: Any) -> None:
    bankwx = with_account
    ok(bankwx(*add_account_args("card")))
    ok(bankwx("operator", "add", "pub", "--role", "publisher"))
    ok(bankwx("operator", "add", "ag", "--role", "agent"))
    ok(bankwx("operator", "add", "mainpub", "--role", "publisher", "--accounts", "main"))
    path = write("b.csv", HEADER + GOOD)
    env = {"BANKWX_OPERATOR": "pub"}
    ok(bankwx("branch", "import", str(path), "--account", "card", env=env))
    ok(bankwx("branch", "import", str(path), "--account", "main", env=env))
    agent = {"BANKWX_OPERATOR": "ag"}
    listed = ok(bankwx("branch", "list", "--account", "card", "--format", "json", env=agent))
    assert [r["id"] for r in json.loads(listed.stdout)] == ["ATM01", "SH001"]
    assert bankwx("branch", "import", str(path), "--account", "card", env=agent).exit_code == 4
    refused = bankwx("branch", "remove", "SH001", "--account", "card", "--yes", env=agent)
    assert refused.exit_code == 4
    shown = bankwx("branch", "show", "SH001", "--account", "card", "--format", "json", env=agent)
    assert json.loads(ok(shown).stdout)["account"] == "card"
    limited = {"BANKWX_OPERATOR": "mainpub"}
    ok(bankwx("branch", "remove", "SH001", "--account", "main", "--yes", env=limited))
    other = bankwx("branch", "remove", "SH001", "--account", "card", "--yes", env=limited)
    assert other.exit_code == 4, other.output
    assert "on account 'card'" in other.stderr
    hidden = bankwx("branch", "show", "SH001", "--account", "card", env=limited)
    assert hidden.exit_code == 4, hidden.output
    # by id alone: the one branch of that id (here card's: refused by its account, audited)
    by_id = bankwx("branch", "remove", "SH001", "--yes", env=limited)
    assert by_id.exit_code == 4 and "on account 'card'" in by_id.stderr
    refusals = json.loads(bankwx("audit", "--action", "branch.manage", "--format", "json").stdout)
    assert refusals[0]["target"] == "card" and refusals[0]["outcome"] == "denied"
    # the ATM is on both accounts: an operator with both names one
    both = bankwx("branch", "show", "ATM01", env=env)
    assert both.exit_code == 1
    assert both.stderr == (
        "Error: accounts card, main each have a branch 'ATM01': choose one with --account.\n"
    )
    assert ok(bankwx("branch", "show", "ATM01", "--format", "json", env=limited)).stdout
    assert ids(bankwx, "--account", "card") == ["ATM01", "SH001"]


# --- the parser ---------------------------------------------------------------------------

_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=";"), max_size=30
).map(str.strip)
_branch = st.builds(
    Branch,
    account=st.just("main"),
    id=st.from_regex(branches.ID_RE, fullmatch=True),
    name=_text.filter(bool),
    type=st.sampled_from(["branch", "atm"]),
    lat=st.floats(-90, 90),
    lng=st.floats(-180, 180),
    address=_text,
    phone=_text,
    hours=_text,
    services=st.lists(_text.filter(bool), max_size=5).map(tuple),
)


def _csv(rows: list[Branch]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(branches.HEADER)
    for b in rows:
        writer.writerow([b.id, b.name, b.type, repr(b.lat), repr(b.lng), b.address, b.phone,
                         b.hours, ";".join(b.services)])  # fmt: skip
    return out.getvalue().encode()


@given(st.lists(_branch, max_size=8, unique_by=lambda b: b.id), st.booleans())
def test_valid_files_read_back_exactly(rows: list[Branch], bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + _csv(rows)
    parsed = branches.parse_file(data, "main")
    assert parsed.errors == ()
    assert [b for _, b in parsed.rows] == rows


@given(st.lists(_branch, min_size=1, max_size=6, unique_by=lambda b: b.id), st.data())
def test_one_bad_row_is_named_and_the_others_read(rows: list[Branch], data: Any) -> None:
    at = data.draw(st.integers(0, len(rows) - 1))
    broken = data.draw(st.sampled_from(["type", "lat", "lng", "id"]))
    bad = rows[at]
    bad = Branch(bad.account, "bad id!" if broken == "id" else bad.id, bad.name,
                 "bank" if broken == "type" else bad.type,
                 123.0 if broken == "lat" else bad.lat,
                 999.0 if broken == "lng" else bad.lng)  # fmt: skip
    text = _csv([*rows[:at], bad, *rows[at + 1 :]])
    parsed = branches.parse_file(text, "main")
    assert [e.line for e in parsed.errors] == [at + 2]
    assert [b for _, b in parsed.rows] == rows[:at] + rows[at + 1 :]


@given(st.binary(max_size=400))
def test_any_bytes_give_rows_or_named_lines(data: bytes) -> None:
    parsed = branches.parse_file(HEADER.encode() + data, "main")
    lines = (HEADER.encode() + data).count(b"\n") + (HEADER.encode() + data).count(b"\r") + 2
    assert all(1 <= e.line <= lines for e in parsed.errors)
    assert all(2 <= n <= lines for n, _ in parsed.rows)
    assert len({b.id for _, b in parsed.rows}) == len(parsed.rows)
    garbage = branches.parse_file(data, "main")
    assert garbage.rows == () or garbage.header_ok

"""`bankwx follower tag|untag TAG --from FILE|-`: openids from a file or standard input, one a
line, reported like every batch command; the ways of naming followers on the command line
keep working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bxtest import Bankwx

from bankwx_cli.domain.followers import SHOWN_BAD_LINES, read_openid_list
from bankwx_cli.errors import ValidationError


def everyone(bankwx: Bankwx, *args: str) -> list[str]:
    result = bankwx("follower", "list", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return [row["openid"] for row in json.loads(result.stdout)]


def tagged(sim: Any) -> set[str]:
    return {f["openid"] for f in sim.followers() if 100 in f["tagid_list"]}


def members_calls(sim: Any, since: int) -> list[dict[str, Any]]:
    return [e for e in sim.log(since=since) if "/members/" in e["path"]]


def test_tag_and_untag_from_a_file_with_comments_blanks_and_repeats(
    synced: Bankwx, small_sim: Any, tmp_path: Path
) -> None:
    listed = everyone(synced)
    lines = ["# VIP campaign, 2026", "", *listed[:55], "  ", f"  {listed[0]}  ", "# end"]
    path = tmp_path / "vip.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = small_sim.last_seq()
    result = synced("follower", "tag", "VIP", "--from", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == "Tagged with 'VIP' on 'main': 55 done, 1 skipped, 0 failed.\n"
    sent = [len(c["body"]["openid_list"]) for c in members_calls(small_sim, before)]
    assert sent == [50, 5]
    assert tagged(small_sim) == set(listed[:55])
    assert sorted(everyone(synced, "--tag", "VIP")) == sorted(listed[:55])

    path.write_text("\n".join(listed[:10]) + "\n", encoding="utf-8")
    result = synced("follower", "untag", "VIP", "--from", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == "Untagged from 'VIP' on 'main': 10 done, 0 skipped, 0 failed.\n"
    assert tagged(small_sim) == set(listed[10:55])


def test_standard_input_and_openids_beside_the_file(synced: Bankwx, small_sim: Any) -> None:
    listed = everyone(synced)
    stdin = "\n".join(listed[:3]) + "\n"
    result = synced("follower", "tag", "--tag", "VIP", listed[3], "--from", "-", input=stdin)
    assert result.exit_code == 0, result.output
    assert result.stderr == "Tagged with 'VIP' on 'main': 4 done, 0 skipped, 0 failed.\n"
    assert tagged(small_sim) == set(listed[:4])
    result = synced("follower", "untag", "VIP", listed[3], "--from", "-", input=stdin)
    assert result.exit_code == 0, result.output
    assert tagged(small_sim) == set()


def test_the_openids_on_the_command_line_still_work(synced: Bankwx, small_sim: Any) -> None:
    listed = everyone(synced)
    result = synced("follower", "tag", *listed[:2], "--tag", "VIP")
    assert result.exit_code == 0, result.output
    assert tagged(small_sim) == set(listed[:2])


def test_a_dry_run_from_a_file_shows_the_batches(
    synced: Bankwx, small_sim: Any, tmp_path: Path
) -> None:
    path = tmp_path / "all.txt"
    path.write_text("\n".join(everyone(synced)), encoding="utf-8")
    before = small_sim.last_seq()
    result = synced("follower", "tag", "VIP", "--from", str(path), "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [p["openids"] for p in json.loads(result.stdout)] == [50, 10]
    assert members_calls(small_sim, before) == []


def test_block_takes_a_file_too(synced: Bankwx, small_sim: Any, tmp_path: Path) -> None:
    listed = everyone(synced)
    path = tmp_path / "block.txt"
    path.write_text("\n".join(listed[:21]), encoding="utf-8")
    result = synced("follower", "block", "--from", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == "Blacklisted on 'main': 21 done, 0 skipped, 0 failed.\n"
    assert synced("follower", "unblock", "--from", str(path)).exit_code == 0
    assert everyone(synced, "--blacklisted", "yes") == []


def test_malformed_lines_are_reported_by_number_and_nothing_is_sent(
    synced: Bankwx, small_sim: Any, tmp_path: Path
) -> None:
    listed = everyone(synced)
    path = tmp_path / "bad.txt"
    path.write_text(f"{listed[0]}\nnot an openid\n\n{listed[1]}\nshort\n", encoding="utf-8")
    before = small_sim.last_seq()
    result = synced("follower", "tag", "VIP", "--from", str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: in the openid list '{path}', 2 lines are not openids: line 2 ('not an "
        "openid'), line 5 ('short'). WeChat openids are 28 letters, digits, '-' or '_', one "
        "a line; nothing was done.\n"
    )
    assert members_calls(small_sim, before) == []
    assert tagged(small_sim) == set()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "Error: no openid list '{path}': give a file of openids, one a line, or - "
         "for standard input.\n"),
        ("directory", "Error: the openid list '{path}' is a directory: give a file of openids, "
         "one a line.\n"),
        ("empty", "Error: the openid list '{path}' holds no openid.\n"),
        ("binary", "Error: the openid list '{path}' is not UTF-8 text: save it as UTF-8.\n"),
    ],
)  # fmt: skip
def test_a_list_that_cannot_be_used_is_one_line(
    synced: Bankwx, small_sim: Any, tmp_path: Path, setup: str, message: str
) -> None:
    path = tmp_path / "list.txt"
    if setup == "directory":
        path.mkdir()
    elif setup == "empty":
        path.write_text("# nobody yet\n\n", encoding="utf-8")
    elif setup == "binary":
        path.write_bytes(b"\xff\xfe\x00o")
    result = synced("follower", "tag", "VIP", "--from", str(path))
    assert result.exit_code == 1, result.output
    assert result.stderr == message.format(path=path)


def test_empty_standard_input_and_a_missing_tag(synced: Bankwx, small_sim: Any) -> None:
    result = synced("follower", "tag", "VIP", "--from", "-", input="")
    assert result.exit_code == 1
    assert result.stderr == "Error: the openid list standard input holds no openid.\n"
    result = synced("follower", "untag", "--from", "-", input=everyone(synced)[0])
    assert result.exit_code == 2
    assert "give the tag: bankwx follower untag TAG --from FILE" in result.stderr


def test_a_long_list_of_bad_lines_names_the_first_few() -> None:
    text = "\n".join(f"bad{n}" for n in range(SHOWN_BAD_LINES + 3))
    with pytest.raises(ValidationError) as caught:
        read_openid_list("-", text)
    shown = ", ".join(f"line {n + 1} ('bad{n}')" for n in range(SHOWN_BAD_LINES))
    assert f"{SHOWN_BAD_LINES + 3} lines are not openids: {shown} and 3 more." in str(caught.value)

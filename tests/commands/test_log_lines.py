"""Log lines (bankwx_cli/logs.py): text and JSON, the values of `key=%s` as JSON fields."""

from __future__ import annotations

import json
import logging
import re

import pytest

from bankwx_cli import logs


def _record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("bankwx_cli.server", level, __file__, 1, msg, args, None)


def test_json_line_has_each_value_as_a_field() -> None:
    record = _record(
        "callback request=%s account=%s route=%s outcome=%s ms=%.1f",
        "42-7", "main", "rule:1", "replied", 2.345,
    )  # fmt: skip
    line = json.loads(logs.JsonFormatter(worker=True).format(record))
    assert line["level"] == "INFO" and line["logger"] == "bankwx_cli.server"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["worker"] == record.process
    assert (
        line["message"] == "callback request=42-7 account=main route=rule:1 outcome=replied ms=2.3"
    )
    assert (line["request"], line["account"], line["outcome"], line["ms"]) == (
        "42-7", "main", "replied", 2.3,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("msg", "args", "fields"),
    [
        ("100%% done count=%d", (3,), {"count": 3}),
        ("%s failed: %s", ("x", "y"), {}),  # no keys: the message alone
        ("rate=%(n)s", ({"n": 1},), {}),  # a mapping: the message alone
        ("plain text", (), {}),
    ],
)
def test_json_line_fields(msg: str, args: tuple[object, ...], fields: dict[str, object]) -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, msg, args, None)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == record.getMessage()
    assert "worker" not in line
    assert {k: line[k] for k in line if k not in ("time", "level", "logger", "message")} == fields


def test_text_line_names_time_level_logger_and_worker() -> None:
    record = _record("worker stopped callbacks=%d", 3, level=logging.WARNING)
    text = logs.TextFormatter(worker=True).format(record)
    stamp, rest = text.split(" ", 1)
    assert stamp.endswith("Z")
    assert (
        rest == f"WARNING bankwx_cli.server [worker {record.process}]: worker stopped callbacks=3"
    )
    assert logs.TextFormatter().format(record).split(" ", 1)[1] == (
        "WARNING bankwx_cli.server: worker stopped callbacks=3"
    )


def test_tracebacks_stay_inside_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = logs.JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: boom" in json.loads(text)["traceback"]

"""Logging: one setup for every process (a command, ``bankwx serve`` and each of its workers).

Lines go to standard error, as text (default) or as one JSON object a line (``--log-format
json``, ``BANKWX_LOG_FORMAT``). Each has the time (ISO 8601, UTC), the level and the logger;
in ``bankwx serve`` it also names its worker (the process id), so that the lines of
``--workers N`` read like those of one process. Levels: warnings by default; ``-v`` info (each
WeChat call, each callback of the receiver); ``-vv`` debug, with timings and SQL counts;
``--debug`` the same, and tracebacks.

Messages that carry values write them as ``key=%s`` (``"callback request=%s account=%s"``):
the text line reads as it always did, and the JSON line gets each value as a field of its own,
found from the message's format once per format string. Nothing is formatted unless the line
is emitted (the receiver's hot path checks ``isEnabledFor`` first).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CALLS = "bankwx_cli.wechat.calls"  # the logger of each WeChat call
QUIET_LOGGERS = ("urllib3", "httpx", "httpcore")  # urllib3's debug lines show access_token


def level_for(verbose: int, debug: bool) -> int:
    """The root level: warnings, -v info, -vv or --debug debug."""
    if debug or verbose >= 2:
        return logging.DEBUG
    return logging.INFO if verbose else logging.WARNING


def setup(
    verbose: int = 0,
    debug: bool = False,
    fmt: str = "text",
    *,
    worker: bool = False,
    own_level: int | None = None,
) -> None:
    """Send every logger's lines to standard error in fmt (text|json); idempotent: a second call
    (``bankwx serve`` after the root command, a worker after its parent) replaces the first.

    ``worker``: name the process in each line (``bankwx serve``). ``own_level``: the level of
    bankwx's own loggers when it differs from the root's (the receiver logs its callbacks and
    its start and stop at info without ``-v``).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bankwx", False):
            root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(JsonFormatter(worker) if fmt == "json" else TextFormatter(worker))
    handler._bankwx = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    level = level_for(verbose, debug)
    root.setLevel(level)
    own = logging.getLogger("bankwx_cli")
    own.setLevel(logging.NOTSET if own_level is None else min(own_level, level))
    # each WeChat call: with -v (and its time with -vv), not with --debug alone
    logging.getLogger(CALLS).setLevel(level_for(verbose, False))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):  # through this handler, not uvicorn's own
        uv = logging.getLogger(name)
        uv.handlers = []
        uv.propagate = True
    logging.captureWarnings(True)  # warnings.warn() too, with time and level


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when a record comes (tests swap it per run)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_second: tuple[int, str] = (-1, "")  # the last second formatted and its text (swapped whole)


def _when(created: float) -> str:
    """ISO 8601 UTC with milliseconds: 2026-12-02T09:04:05.123Z (one strftime a second)."""
    global _second
    seconds = int(created)
    cached = _second
    if cached[0] != seconds:
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{cached[1]}.{int((created - seconds) * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """``2026-12-02T09:04:05.123Z INFO bankwx_cli.server [worker 4242]: callback ...``"""

    def __init__(self, worker: bool = False) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        head = f"{_when(record.created)} {record.levelname} {record.name}"
        if self.worker:
            head += f" [worker {record.process}]"
        line = f"{head}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# one %-directive of a log message, and the `key=` just before it
_DIRECTIVE = re.compile(r"(?:(\w+)=)?%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?([a-zA-Z%])")
_fields_cache: dict[str, tuple[str | None, ...]] = {}


def _keys(msg: str) -> tuple[str | None, ...]:
    """The key of each positional argument of msg (None where it has none)."""
    found = _fields_cache.get(msg)
    if found is None:
        found = tuple(m[1] or None for m in _DIRECTIVE.finditer(msg) if m[2] != "%")
        if len(_fields_cache) < 4096:
            _fields_cache[msg] = found
    return found


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 1)
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, (worker), message, and the message's
    ``key=%s`` values as fields (``account``, ``outcome``, ``request``, ``ms``, ...)."""

    def __init__(self, worker: bool = False) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _when(record.created),
            "level": record.levelname,
            "logger": record.name,
        }
        if self.worker:
            line["worker"] = record.process
        line["message"] = record.getMessage()
        args = record.args
        if isinstance(args, tuple) and args and isinstance(record.msg, str):
            keys = _keys(record.msg)
            if len(keys) == len(args):
                for key, value in zip(keys, args, strict=True):
                    if key is not None and key not in line:
                        line[key] = _plain(value)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class Tally:
    """A count of things done, for the ``-vv`` summary (SQL statements, WeChat calls)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: object) -> None:
        self.count += 1


def counts() -> tuple[int, int]:
    """SQL statements run and WeChat calls made by this process so far (counted at -vv)."""
    db = sys.modules.get("bankwx_cli.storage.db")
    client = sys.modules.get("bankwx_cli.wechat.client")
    return (
        db.STATEMENTS.count if db is not None else 0,
        client.CALLS.count if client is not None else 0,
    )


def summary(command: str) -> Callable[[], None]:
    """A function that logs, at debug, what the command cost from now on: its time, its SQL
    statements and its WeChat calls (``-vv``)."""
    started = time.perf_counter()
    sql, calls = counts()

    def done() -> None:
        sql_now, calls_now = counts()
        log.debug(
            "finished command=%s ms=%.1f sql_statements=%d wechat_calls=%d",
            command, (time.perf_counter() - started) * 1000, sql_now - sql, calls_now - calls,
        )  # fmt: skip

    return done

"""The receiver's hot path (issue 9): its query parsing, and its deadline while another
process holds the store's write lock for longer than the busy timeout."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from urllib.parse import parse_qsl

import httpx
import pytest
from bxprocs import Proc, start_receiver
from bxtest import Bankwx, delivery, sealed_text
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli import server
from bankwx_cli.sim.driver import SimDriver

pytestmark = pytest.mark.serial  # measures time: run alone (make test)

PARTS = ["a=1", "b=", "=c", "&", "d", "e=f=g", "%41=%42", "h=+", "a=2", "é=ü", ";", "=", "k==v",
         "\n=\n"]  # fmt: skip


@given(
    st.one_of(
        st.binary(max_size=120),
        st.lists(st.sampled_from(PARTS), max_size=8).map(lambda p: "&".join(p).encode()),
    )
)
def test_query_is_parse_qsls(raw: bytes) -> None:
    assert server._query(raw) == dict(parse_qsl(raw.decode("latin-1")))


def test_answers_in_time_while_the_store_is_locked_then_logs_the_late_answer(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    added = account("keyword", "add", "余额", "--match", "exact", "--reply-text", "余额100元")
    assert added.exit_code == 0, added.output
    proc = start_receiver(account, receivers, "--deadline", "1")
    url = f"{proc.url}/wx/main"
    lock = sqlite3.connect(os.environ["BANKWX_DB"], isolation_level=None)
    with httpx.Client(timeout=10) as http:
        query, body = delivery(sealed_text(8801), "1")
        assert http.post(url, params=query, content=body).status_code == 200
        lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock, past 2 s
        started = time.monotonic()
        encrypt = sealed_text(8802)
        query, body = delivery(encrypt, "2")
        answer = http.post(url, params=query, content=body)
        elapsed = time.monotonic() - started
        assert (answer.status_code, answer.content) == (200, b"success")
        assert elapsed < 1.5  # the deadline, not the lock
        time.sleep(2.5)
        lock.execute("ROLLBACK")
        deadline = time.monotonic() + 10
        late = []
        while time.monotonic() < deadline and not late:
            log = json.loads(account("messages", "list", "--format", "json").stdout)
            late = [m for m in log if m["msg_id"] == "8802" and m["direction"] == "in"]
            time.sleep(0.2)
        assert late and late[0]["outcome"] == "late_enqueued"  # not lost: the answer is queued
        query, body = delivery(encrypt, "3")
        retry = http.post(url, params=query, content=body)
        assert (retry.status_code, retry.content) == (200, b"success")
    lock.close()
    log = json.loads(account("messages", "list", "--format", "json").stdout)
    assert [m["deliveries"] for m in log if m["msg_id"] == "8802"] == [2]

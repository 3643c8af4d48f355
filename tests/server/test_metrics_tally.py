"""The callbacks' metrics, tallied on the loop, reach prometheus_client as its own counter and
histogram would have counted them one by one."""

from __future__ import annotations

import uuid

from bxtest import Bankwx
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from bankwx_cli import server
from bankwx_cli.context import AppContext
from bankwx_cli.extensions import Request, Response
from bankwx_cli.settings import from_environment

edges = st.sampled_from([*server.CALLBACK_BUCKETS, 0.0, 1e-9, 0.0050001, 10.0001, 1e6])
durations = st.lists(st.one_of(edges, st.floats(0, 20)), max_size=40)


def samples(metric: Counter | Histogram, account: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.labels.get("account") == account and not sample.name.endswith("_created"):
                key = (sample.name, sample.labels.get("le", ""))
                found[key] = found.get(key, 0) + sample.value  # summed over the other labels
    return found


@given(durations, st.lists(st.sampled_from(["known", "stranger", "gone"]), max_size=40))
def test_a_tally_flushed_equals_one_observation_a_callback(
    values: list[float], whose: list[str]
) -> None:
    """Each callback of a known account counted and timed as prometheus_client would have
    one by one; a stranger's (an unknown name) and an ``unknown_account`` refusal counted
    under "unknown", untimed."""
    account = f"tally-{uuid.uuid4().hex[:8]}"
    stranger = f"stranger-{uuid.uuid4().hex[:8]}"
    reference = Histogram(
        "bankwx_callback_seconds", "reference", ["account"], buckets=server.CALLBACK_BUCKETS,
        registry=CollectorRegistry(),
    )  # fmt: skip
    before = samples(server.CALLBACKS, "unknown")
    tally = server._Tally(lambda name: name == account)
    known = 0
    for value, who in zip(values, whose + ["known"] * len(values), strict=False):
        if who == "known":
            tally.seen.append((account, 200, "replied", value))
            reference.labels(account).observe(value)
            known += 1
        elif who == "stranger":
            tally.seen.append((stranger, 404, "unknown_account", value))
        else:  # a known name, refused as unknown (removed since)
            tally.seen.append((account, 404, "unknown_account", value))
    tally.flush()
    tally.flush()  # a second flush adds nothing
    ours, theirs = samples(server.CALLBACK_SECONDS, account), samples(reference, account)
    if known:
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            assert abs(ours[key] - value) < 1e-6, key
    else:
        assert not ours
    counted = samples(server.CALLBACKS, account)
    assert counted.get(("bankwx_callbacks_total", ""), 0) == known
    assert not samples(server.CALLBACKS, stranger)
    unknown = samples(server.CALLBACKS, "unknown").get(("bankwx_callbacks_total", ""), 0)
    assert unknown - before.get(("bankwx_callbacks_total", ""), 0) == len(values) - known


def test_callbacks_metrics_kept_without_a_sweep_are_flushed_at_the_bound(
    with_account: Bankwx,
) -> None:
    """A receiver whose deadline sweep never started (no lifespan: nothing flushes by the
    clock) flushes its callbacks' metrics itself once ``TALLY_MOST`` are kept: memory stays
    bounded, and every callback is counted."""
    app = AppContext(from_environment())
    receiver = server.build(app, server.ServeOptions(dispatcher=False))
    receiver.engine.refresh(True)  # the accounts, as the receiver's start loads them
    try:
        before = samples(server.CALLBACKS, "main").get(("bankwx_callbacks_total", ""), 0)
        request = Request(receiver, "POST", "/wx/main", {"name": "main"}, {}, b"", 0.0)
        answered = Response(200, b"success", None, "replied")
        for _ in range(server.TALLY_MOST + 10):
            receiver.observe_callback(request, answered)
        assert len(receiver.tally.seen) == 10
        counted = samples(server.CALLBACKS, "main").get(("bankwx_callbacks_total", ""), 0)
        assert counted - before == server.TALLY_MOST
    finally:
        receiver.pool.shutdown()
        app.close()

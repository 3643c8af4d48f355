"""The callbacks' metrics, tallied on the loop, reach prometheus_client as its own counter and
histogram would have counted them one by one."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from bankwx_cli import server

edges = st.sampled_from([*server.CALLBACK_BUCKETS, 0.0, 1e-9, 0.0050001, 10.0001, 1e6])
durations = st.lists(st.one_of(edges, st.floats(0, 20)), max_size=40)


def samples(metric: Counter | Histogram, account: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in metric.collect():
        for sample in family.samples:
            if sample.labels.get("account") == account and not sample.name.endswith("_created"):
                found[(sample.name, sample.labels.get("le", ""))] = sample.value
    return found


@given(durations)
def test_a_tally_flushed_equals_one_observation_a_callback(values: list[float]) -> None:
    account = f"tally-{uuid.uuid4().hex[:8]}"
    reference = Histogram(
        "bankwx_callback_seconds", "reference", ["account"], buckets=server.CALLBACK_BUCKETS,
        registry=CollectorRegistry(),
    )  # fmt: skip
    tally = server._Tally()
    for value in values:
        tally.observe(account, value)
        tally.count((account, "200", "replied"))
        reference.labels(account).observe(value)
    tally.flush()
    tally.flush()  # a second flush adds nothing
    ours, theirs = samples(server.CALLBACK_SECONDS, account), samples(reference, account)
    if values:
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            assert abs(ours[key] - value) < 1e-6, key
    counted = samples(server.CALLBACKS, account)
    assert counted.get(("bankwx_callbacks_total", ""), 0) == len(values)

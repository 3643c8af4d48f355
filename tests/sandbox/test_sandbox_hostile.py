"""Whatever a caller sends the sandbox, it answers with JSON: 200 or a 4xx error in the
contract's shape, never 500 (it stands in for a bank, not for a broken one)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankwx_cli.sandbox.server import SandboxThread

PATHS = [
    ("POST", "/v1/customers/verify"),
    ("POST", "/v1/otp/send"),
    ("POST", "/v1/otp/verify"),
    ("POST", "/sandbox/faults"),
    ("POST", "/sandbox/clock"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("hostile") / "bank.db"
    with (
        SandboxThread(data, seed=2) as running,
        httpx.Client(
            base_url=running.url,
            headers={"Authorization": "Bearer sandbox"},
            trust_env=False,
            timeout=10,
        ) as http,
    ):
        yield http


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "card",
                    "phone",
                    "customer_id",
                    "request_id",
                    "code",
                    "advance",
                    "delay_ms",
                    "fail_rate",
                    "down",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


def _answered(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    body = answer.json()
    if answer.status_code >= 400:
        assert set(body["error"]) == {"code", "message"}


@settings(max_examples=60)
@given(st.sampled_from(PATHS), st.binary(max_size=200))
def test_any_bytes(client: httpx.Client, target: tuple[str, str], body: bytes) -> None:
    method, path = target
    _answered(client.request(method, path, content=body))
    client.post("/sandbox/faults", json={"delay_ms": 0, "fail_rate": 0, "down": False})


@settings(max_examples=80)
@given(st.sampled_from(PATHS), json_values)
def test_any_json(client: httpx.Client, target: tuple[str, str], value: object) -> None:
    method, path = target
    _answered(client.request(method, path, json=value))
    client.post("/sandbox/faults", json={"delay_ms": 0, "fail_rate": 0, "down": False})


@settings(max_examples=40)
@given(st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
def test_any_customer_id_and_limit(client: httpx.Client, text: str) -> None:
    from urllib.parse import quote

    segment = quote(text, safe="")
    for path in (f"/v1/customers/{segment}", f"/v1/customers/{segment}/card-bill"):
        _answered(client.get(path))
    _answered(client.get(f"/v1/customers/C000001/transactions?limit={quote(text)}"))

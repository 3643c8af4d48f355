"""Sealing with the master key: what opens, and what is refused (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.errors import KeyError_
from bankwx_cli.keys import MasterKey, Sealer, UnsealError

KEY = MasterKey(bytes(range(32)))
SEALER = Sealer(lambda: KEY)


@given(st.binary(max_size=4096))
def test_bytes_round_trip(data: bytes) -> None:
    blob = SEALER.seal(data, "messages.reply")
    assert blob[:1] == b"\x01" and len(blob) == 1 + 12 + len(data) + 16
    assert SEALER.open(blob, "messages.reply") == data


@given(st.text(max_size=2048))
def test_text_round_trip(text: str) -> None:
    blob = KEY.seal(text, "outbox.payload")
    assert KEY.open(blob, "outbox.payload") == text
    assert SEALER.open(blob, "outbox.payload") == text.encode("utf-8")


@given(st.lists(st.none() | st.binary(max_size=600), max_size=400))
def test_sealing_many_is_sealing_each(values: list[bytes | None]) -> None:
    """A group's values sealed at once: None kept, each blob opens to its value, in the
    layout of ``seal``, and no nonce used twice (400 values: past the 4 KiB random buffer)."""
    blobs = SEALER.seal_many(values, "messages.reply")
    assert len(blobs) == len(values)
    nonces = []
    for value, blob in zip(values, blobs, strict=True):
        if value is None:
            assert blob is None
            continue
        assert blob is not None and blob[:1] == b"\x01" and len(blob) == 29 + len(value)
        assert SEALER.open(blob, "messages.reply") == value
        nonces.append(blob[1:13])
    assert len(set(nonces)) == len(nonces)


@given(st.binary(min_size=0, max_size=512), st.data())
def test_a_flipped_byte_is_refused(data: bytes, draw: st.DataObject) -> None:
    blob = bytearray(SEALER.seal(data, "messages.reply"))
    index = draw.draw(st.integers(0, len(blob) - 1))
    bit = draw.draw(st.integers(0, 7))
    blob[index] ^= 1 << bit
    with pytest.raises(UnsealError):
        SEALER.open(bytes(blob), "messages.reply")


@given(st.binary(max_size=64))
def test_any_bytes_are_refused_cleanly(blob: bytes) -> None:
    with pytest.raises(UnsealError):
        SEALER.open(blob, "messages.reply")


def test_another_purpose_or_key_is_refused() -> None:
    blob = SEALER.seal(b"<xml>reply</xml>", "messages.reply")
    with pytest.raises(UnsealError):
        SEALER.open(blob, "outbox.payload")
    with pytest.raises(UnsealError):
        MasterKey.generate().open_bytes(blob, "messages.reply")
    assert issubclass(UnsealError, KeyError_)  # a user-facing error (exit 1), never a traceback


def test_a_sealer_without_a_key_says_so() -> None:
    with pytest.raises(KeyError_, match="no master key"):
        Sealer().seal(b"x", "messages.reply")


def test_sealing_nonces_never_repeat_across_the_random_buffer() -> None:
    # 12-byte nonces from the 4 KiB buffer: several refills, no nonce twice
    nonces = {KEY.seal(b"same", "messages.reply")[1:13] for _ in range(3 * 4096 // 12)}
    assert len(nonces) == 3 * 4096 // 12


def test_a_forked_process_draws_random_bytes_of_its_own() -> None:
    import os

    from bankwx_cli.keys import random_bytes

    random_bytes(8)  # the parent's buffer is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it draws next goes to the parent
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 32 and child != random_bytes(32)

"""Property tests: field validators accept exactly WeChat's formats; sealing round-trips."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.domain import accounts
from bankwx_cli.errors import KeyError_, ValidationError
from bankwx_cli.keys import MasterKey

HEX = "0123456789abcdef"
ALNUM = string.ascii_letters + string.digits


def accepts(fn: object, value: str) -> bool:
    try:
        fn(value)  # type: ignore[operator]
    except ValidationError:
        return False
    return True


@given(st.text(alphabet=HEX, min_size=16, max_size=16))
def test_appid_accepts_wx_and_16_hex(tail: str) -> None:
    assert accepts(accounts.validate_appid, "wx" + tail)


@given(st.text(max_size=40))
def test_appid_accepts_exactly_the_format(value: str) -> None:
    expected = re.fullmatch(r"wx[0-9a-f]{16}", value) is not None
    assert accepts(accounts.validate_appid, value) == expected


@given(st.text(alphabet=ALNUM + "=+/ -_", max_size=50))
def test_aes_key_exactly_43_alnum(value: str) -> None:
    expected = len(value) == 43 and all(c in ALNUM for c in value)
    assert accepts(accounts.validate_aes_key, value) == expected


@given(st.text(alphabet=ALNUM + "_ -!中", max_size=40))
def test_token_3_to_32_alnum(value: str) -> None:
    expected = 3 <= len(value) <= 32 and all(c in ALNUM for c in value)
    assert accepts(accounts.validate_token, value) == expected


@given(st.text(alphabet=HEX + "ABCDEFgx_h", max_size=20))
def test_original_id(value: str) -> None:
    candidate = "gh_" + value
    expected = re.fullmatch(r"gh_[0-9a-f]{12}", candidate) is not None
    assert accepts(accounts.validate_original_id, candidate) == expected


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_ .", max_size=40))
def test_account_name(value: str) -> None:
    expected = 1 <= len(value) <= 32 and all(
        c in string.ascii_lowercase + string.digits + "-" for c in value
    )
    assert accepts(accounts.validate_name, value) == expected


KEY = MasterKey(bytes(range(32)))


@given(st.text(), st.text(min_size=1, max_size=40))
def test_seal_open_round_trip(plaintext: str, purpose: str) -> None:
    blob = KEY.seal(plaintext, purpose)
    assert KEY.open(blob, purpose) == plaintext
    if len(plaintext.encode()) >= 8:
        assert plaintext.encode() not in blob


@given(st.text(min_size=1, max_size=64), st.data())
def test_flipped_byte_never_opens(plaintext: str, data: st.DataObject) -> None:
    blob = bytearray(KEY.seal(plaintext, "p"))
    index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(KeyError_):
        KEY.open(bytes(blob), "p")


def test_wrong_purpose_never_opens() -> None:
    blob = KEY.seal("secret", "account:a:secret")
    with pytest.raises(KeyError_):
        KEY.open(blob, "account:b:secret")


def test_other_key_never_opens() -> None:
    blob = KEY.seal("secret", "p")
    with pytest.raises(KeyError_):
        MasterKey(b"\x01" * 32).open(blob, "p")


@given(
    st.one_of(
        st.floats(min_value=0, max_value=2**34, allow_nan=False),
        st.integers(0, 2**34).map(float),
        # half a microsecond either side of a second's end: the rounding and its carry
        st.integers(1_600_000_000, 2_000_000_000).map(lambda s: s + 0.9999995),
        st.integers(1_600_000_000, 2_000_000_000).map(lambda s: s - 0.0000005),
    )
)
def test_iso_of_is_iso_of_the_datetime(timestamp: float) -> None:
    from datetime import UTC, datetime

    from bankwx_cli.clock import iso, iso_of

    assert iso_of(timestamp) == iso(datetime.fromtimestamp(timestamp, UTC))


@given(st.text(alphabet=st.sampled_from("0123456789 -+86Xx余额卡号٣١"), max_size=40) | st.text())
def test_mask_without_ascii_digits_is_the_text(text: str) -> None:
    from bankwx_cli.domain.masking import mask

    if not re.search("[0-9]", text):
        assert mask(text) == text
    else:  # what is masked keeps its length and the characters around the digits
        assert len(mask(text)) == len(text)

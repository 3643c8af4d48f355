"""Hostile callbacks: the corpus in tests/data/hostile, and properties over any input."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto

from bankwx_cli.errors import BadCallbackError, BadSignatureError
from bankwx_cli.models.replies import TextReply
from bankwx_cli.wechat.callback import (
    CallbackKeys,
    Inbound,
    _is_digits,
    _is_nonce,
    open_callback,
    render_reply,
)

# Protocol sheet §1.7, vector A (tests/data/hostile/README.md).
TOKEN = "pamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxb11529c136998cb6"
ORIGINAL_ID = "gh_7f083739789a"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
NOW = 1409304348
NONCE = "1320562132"
WINDOW = 300.0
# Seconds of this thread's CPU (not of the clock: a loaded machine may leave the test waiting):
# no input makes the refusal blow up. Every file of the corpus is refused in a few ms (a deep or
# wide one by the depth screen, before xmltodict builds it: 40 ms and more before).
FAST = 0.5

PLAIN = CallbackKeys(TOKEN, None, APPID, ORIGINAL_ID, "plain")
SAFE = CallbackKeys(TOKEN, AES_KEY, APPID, ORIGINAL_ID, "safe")
HOSTILE = Path(__file__).parent.parent / "data" / "hostile"
CORPUS = sorted(p for p in HOSTILE.iterdir() if p.name != "README.md")
NOT_ADDRESSED = "not addressed"
NOT_DECRYPTED = "does not decrypt"


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - the protocol


def signed_query(encrypt: str | None = None, timestamp: int = NOW) -> dict[str, str]:
    ts = str(timestamp)
    query = {"signature": sign(TOKEN, ts, NONCE), "timestamp": ts, "nonce": NONCE}
    if encrypt is not None:
        query |= {"encrypt_type": "aes", "msg_signature": sign(TOKEN, ts, NONCE, encrypt)}
    return query


def seal(xml: bytes) -> str:
    encrypted: bytes = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(xml, APPID)
    return encrypted.decode()


def envelope(encrypt: str) -> bytes:
    return f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()


def message(rest: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>{NOW}</CreateTime>{rest}</xml>"
    )


def load(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def timed_refusal(
    expected: type[Exception], keys: CallbackKeys, query: dict[str, str], body: bytes
) -> str:
    started = time.thread_time()
    with pytest.raises(expected) as refused:
        open_callback(keys, query, body, NOW, WINDOW)
    assert time.thread_time() - started < FAST
    return str(refused.value)


# --- The corpus --------------------------------------------------------------------------------


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 60
    assert len(load(HOSTILE / "body-5mb.xml.gz")) > 5 * 1024 * 1024


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_hostile_plain_body(path: Path) -> None:
    timed_refusal(BadCallbackError, PLAIN, signed_query(), load(path))


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_hostile_safe_body(path: Path) -> None:
    body = load(path)
    found = re.search(rb"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", body)
    encrypt = found.group(1).decode() if found else ""
    if path.name.startswith("encrypt-"):
        text = timed_refusal(BadSignatureError, SAFE, signed_query(encrypt), body)
        assert NOT_DECRYPTED in text
    else:
        timed_refusal(BadCallbackError, SAFE, signed_query(encrypt), body)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_hostile_plaintext_inside_a_valid_envelope(path: Path) -> None:
    """Signed and encrypted with the account's own key: still parsed with every guard."""
    encrypt = seal(load(path))
    timed_refusal(BadCallbackError, SAFE, signed_query(encrypt), envelope(encrypt))


def test_external_entities_never_reach_the_file_system() -> None:
    body = (HOSTILE / "xxe-file.xml").read_bytes()
    text = timed_refusal(BadCallbackError, PLAIN, signed_query(), body)
    assert "root:" not in text


def test_wechatpys_parser_refuses_entity_declarations_too() -> None:
    """The second wall, should our DOCTYPE screen ever be bypassed: xmltodict and expat."""
    with pytest.raises(ValueError, match="entities are disabled"):
        parse_message((HOSTILE / "billion-laughs.xml").read_bytes())
    parsed = xmltodict.parse((HOSTILE / "xxe-file.xml").read_bytes(), disable_entities=False)
    assert parsed["xml"]["Content"] is None  # expat does not fetch external entities


# --- Properties --------------------------------------------------------------------------------

VALID = [
    message("<MsgType>text</MsgType><Content><![CDATA[余额]]></Content><MsgId>12</MsgId>").encode(),
    message("<MsgType>event</MsgType><Event>CLICK</Event><EventKey>BALANCE</EventKey>").encode(),
    message(
        "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_9</EventKey>"
    ).encode(),
    message(
        "<MsgType>event</MsgType><Event>location_select</Event><SendLocationInfo>"
        "<Location_X>23</Location_X><Label><![CDATA[广州]]></Label></SendLocationInfo>"
    ).encode(),
]
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message with a few bytes replaced, inserted or removed somewhere."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 4))
        data[at : at + cut] = draw(st.binary(max_size=4))
    return bytes(data)


def refused_as_expected(keys: CallbackKeys, query: dict[str, str], body: bytes) -> object:
    """Open a callback; any refusal must be one of ours."""
    try:
        outcome: object = open_callback(keys, query, body, NOW, WINDOW)
    except (BadCallbackError, BadSignatureError) as exc:
        outcome = exc
    event(type(outcome).__name__)
    return outcome


@settings(max_examples=200)
@given(body=st.binary(max_size=2048))
@example(body=b"<xml/>")
@example(body=b"")
def test_any_bytes_as_a_plain_body(body: bytes) -> None:
    outcome = refused_as_expected(PLAIN, signed_query(), body)
    assert isinstance(outcome, Inbound | BadCallbackError)


@settings(max_examples=200)
@given(body=mutated())
def test_any_mutated_message_as_a_plain_body(body: bytes) -> None:
    outcome = refused_as_expected(PLAIN, signed_query(), body)
    if isinstance(outcome, BadSignatureError):
        assert NOT_ADDRESSED in str(outcome)  # the mutation hit ToUserName
    else:
        assert isinstance(outcome, Inbound | BadCallbackError)


@settings(max_examples=200)
@given(
    encrypt=st.one_of(
        st.binary(min_size=1, max_size=512).map(lambda b: base64.b64encode(b).decode()),
        st.text(alphabet=BASE64, min_size=1, max_size=700),
    )
)
def test_any_encrypt_under_a_valid_msg_signature(encrypt: str) -> None:
    """Undecryptable is 403, whatever the reason: no padding or format oracle for token holders."""
    outcome = refused_as_expected(SAFE, signed_query(encrypt), envelope(encrypt))
    if isinstance(outcome, BadSignatureError):
        assert NOT_DECRYPTED in str(outcome)
    else:
        assert isinstance(outcome, Inbound | BadCallbackError)


@settings(max_examples=200)
@given(plaintext=st.one_of(st.binary(max_size=1024), mutated()))
def test_any_plaintext_in_a_valid_envelope(plaintext: bytes) -> None:
    encrypt = seal(plaintext)
    outcome = refused_as_expected(SAFE, signed_query(encrypt), envelope(encrypt))
    if isinstance(outcome, BadSignatureError):
        assert NOT_ADDRESSED in str(outcome)
    else:
        assert isinstance(outcome, Inbound | BadCallbackError)


@settings(max_examples=200)
@given(at=st.integers(0, 10_000), replacement=st.sampled_from(BASE64))
def test_a_flipped_byte_in_encrypt_is_a_bad_signature(at: int, replacement: str) -> None:
    encrypt = seal(VALID[0])
    at %= len(encrypt)
    tampered = encrypt[:at] + replacement + encrypt[at + 1 :]
    if tampered == encrypt:
        return
    with pytest.raises(BadSignatureError):
        open_callback(SAFE, signed_query(encrypt), envelope(tampered), NOW, WINDOW)


@settings(max_examples=200)
@given(skew=st.integers(-100_000, 100_000))
def test_the_replay_window(skew: int) -> None:
    encrypt = seal(VALID[0])
    outcome = refused_as_expected(SAFE, signed_query(encrypt, NOW + skew), envelope(encrypt))
    assert isinstance(outcome, Inbound) == (abs(skew) <= WINDOW)


XML_CHARS = st.characters(
    blacklist_categories=["Cs"],
    blacklist_characters=[chr(c) for c in range(32) if chr(c) not in "\t\n\r"]
    + ["\ufffe", "\uffff"],
)


def as_xml_reads_it(text: str) -> str:
    """XML normalises line ends, in CDATA too."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=200)
@given(content=st.text(XML_CHARS, max_size=300))
@example(content="]]>")
@example(content="a]]]]>b<![CDATA[c")
def test_inbound_text_round_trip(content: str) -> None:
    """A follower's text, encrypted by WeChat, comes out as sent (wechatpy trims the ends)."""
    cdata = content.replace("]]>", "]]]]><![CDATA[>")
    xml = message(f"<MsgType>text</MsgType><Content><![CDATA[{cdata}]]></Content><MsgId>1</MsgId>")
    encrypt = seal(xml.encode())
    inbound = open_callback(SAFE, signed_query(encrypt), envelope(encrypt), NOW, WINDOW)
    assert inbound.content == as_xml_reads_it(content).strip()


@settings(max_examples=200)
@given(content=st.text(max_size=300))
@example(content="]]>")
@example(content="a\x00b\ud800c")
def test_reply_text_round_trip(content: str) -> None:
    """Any reply text, encrypted, decrypts to itself less what XML cannot carry."""
    encrypt = seal(VALID[0])
    inbound = open_callback(SAFE, signed_query(encrypt), envelope(encrypt), NOW, WINDOW)
    body = render_reply(SAFE, inbound, TextReply(content), encrypt=True, timestamp=NOW, nonce="n1")
    outer = xmltodict.parse(body)["xml"]
    assert outer["MsgSignature"] == sign(
        TOKEN, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"]
    )
    inner = WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(
        body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    reply = xmltodict.parse(inner, strip_whitespace=False)["xml"]
    carried = "".join(c for c in content if is_xml_char(c))
    assert (reply["Content"] or "") == as_xml_reads_it(carried)
    assert (reply["ToUserName"], reply["FromUserName"]) == (OPENID, ORIGINAL_ID)


def is_xml_char(c: str) -> bool:
    code = ord(c)
    return (
        c in "\t\n\r"
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _element(name: str, children: list[Any] | str) -> str:
    inner = children if isinstance(children, str) else "".join(_element(*c) for c in children)
    return f"<{name}>{inner}</{name}>"


def _chain(levels: int) -> list[Any]:
    """Elements nested levels deep below the field that holds them."""
    tree: list[Any] | str = "x"
    for _ in range(levels):
        tree = [("a", tree)]
    return tree if isinstance(tree, list) else []


_trees: st.SearchStrategy[Any] = st.one_of(
    st.recursive(
        st.text(alphabet="xyz", max_size=3),
        lambda inner: st.lists(st.tuples(st.sampled_from(["a", "b", "item"]), inner), max_size=3),
        max_leaves=20,
    ),
    st.integers(1, 12).map(_chain),
)
_FIELDS = st.lists(st.tuples(st.sampled_from(["Extra", "More", "ResultList"]), _trees), max_size=3)


@settings(max_examples=300)
@given(fields=_FIELDS, long=st.booleans())
def test_the_depth_screen_refuses_only_what_the_reading_refuses(
    fields: list[tuple[str, Any]], long: bool
) -> None:
    """``_refuse_deep`` (bodies of 4,096 characters or more) against xmltodict's reading and
    ``_flatten`` of the same text: it refuses nothing they accept; where it refuses, they do
    too, with the same message when the body has no other fault."""
    from bankwx_cli.wechat import callback

    padding = "余" * (4096 if long else 1)
    rest = "".join(_element(name, tree) for name, tree in fields)
    text = message(f"<MsgType>text</MsgType><Content>{padding}</Content><MsgId>1</MsgId>{rest}")
    screened = reading = None
    try:
        callback._refuse_deep(text)
    except BadCallbackError as exc:
        screened = str(exc)
    try:
        callback._read(parse_message(text)._data, False, False)
    except BadCallbackError as exc:
        reading = str(exc)
    event(f"screened={screened} read={reading}")
    if not long:
        assert screened is None  # a short body is left to the reading
    if screened is not None:
        assert reading is not None
        names = [name for name, _ in fields]
        if len(set(names)) == len(names):  # no field repeated: the depth, the one fault
            assert screened == reading


def test_a_long_envelope_nested_past_the_limit_is_refused_though_its_encrypt_is_good() -> None:
    """WeChat's envelope has two or three flat fields: one nested past the limit (and long
    enough to be screened) is refused before xmltodict builds it, its Encrypt unread."""
    encrypt = seal(message("<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId>").encode())
    deep = _element("Extra", _chain(12)) + "<Pad>" + "x" * 4096 + "</Pad>"
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>{deep}</xml>".encode()
    assert "nested too deeply" in timed_refusal(BadCallbackError, SAFE, signed_query(encrypt), body)


@given(st.one_of(st.text(max_size=80), st.text("0123456789aZ_-+ ٣²", max_size=70)))
@example("1" * 64)
@example("1" * 65)
@example("٣")  # a digit, not an ASCII one
@example("²")
def test_the_nonce_and_timestamp_checks_are_their_patterns(text: str) -> None:
    assert _is_nonce(text) == bool(re.fullmatch(r"[A-Za-z0-9]{1,64}", text))
    assert _is_digits(text) == bool(re.fullmatch(r"[0-9]{1,20}", text))

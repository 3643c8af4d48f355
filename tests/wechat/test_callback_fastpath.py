"""The lean path of the callback layer is wechatpy's path, only quicker (issues 9 and 19).

For any input: the lean envelope reader gives the `Encrypt` xmltodict gives, or the same
error; the lean text-message and event readers give the fields parse_message gives, or leave
the document to wechatpy; the text reply template renders wechatpy's TextReply byte for byte;
the envelope around wechatpy's AES is wechatpy's encrypt_message, and decrypts to the reply;
the account's long-lived cipher contexts encrypt and decrypt every message of a sequence as
wechatpy's fresh ones do, whatever came before (refused ciphertexts included).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.events import SubscribeScanEvent
from wechatpy.replies import TextReply as WxTextReply

from bankwx_cli.errors import BadCallbackError, BankwxError
from bankwx_cli.models.replies import TextReply
from bankwx_cli.wechat import callback as cb

TOKEN = "pamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxb11529c136998cb6"
ORIGINAL_ID = "gh_7f083739789a"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# --- the reference: the wechatpy path alone, as the layer did it before the lean path -------


def reference_parse(xml: bytes) -> cb.Inbound:
    text = cb._screen(xml)
    try:
        message = parse_message(text)
        return cb._read(message._data, isinstance(message, SubscribeScanEvent), False)
    except BankwxError:
        raise
    except Exception as exc:
        raise BadCallbackError(f"not a WeChat message ({type(exc).__name__}).") from exc


def reference_envelope(body: bytes) -> str:
    text = cb._screen(body)
    try:
        encrypt = xmltodict.parse(text)["xml"]["Encrypt"]
    except Exception as exc:
        raise BadCallbackError(f"not an encrypted envelope ({type(exc).__name__}).") from exc
    if not isinstance(encrypt, str) or not encrypt:
        raise BadCallbackError("the envelope's Encrypt is empty or repeated.")
    return encrypt


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except BankwxError as exc:
        return "error", type(exc)


# --- documents near WeChat's layout ------------------------------------------------------------

TRICKY = ["]]>", "]]", "]", "\r\n", "\r", "\n", " ", "\t", "\u3000", "\x85", "\xa0", "\x00",
          "\x01", "\x1f", "\ufffe", "\ufffd", "<", "&", "&amp;", "<![CDATA[", "</Content>",
          "\U0001f600", "余额", "]]></Content><MsgId>1</MsgId></xml>"]  # fmt: skip
pieces = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY))
free_text = st.lists(pieces, max_size=12).map("".join)
good_ids = st.text(alphabet=ALNUM + "_-", min_size=1, max_size=64)
bad_ids = st.one_of(
    st.sampled_from(["", " " + OPENID, OPENID + " ", "o<1", "o]]>1", "o\r", "x" * 65]), free_text
)
any_ids = st.one_of(good_ids, bad_ids)
good_numbers = st.integers(0, 2**64).map(str)
bad_numbers = st.one_of(
    st.sampled_from(["", " 12", "1_0", "-5", "&#49;", "<![CDATA[12]]>", "1" * 21]), free_text
)
good_seps = st.sampled_from(["", "", "\n", "\r\n", " \t", "\r"])
bad_seps = st.sampled_from(["\u3000", "x", "<!-- c -->", "\x0b", "&amp;"])


@st.composite
def text_documents(draw: st.DrawFn) -> str:
    """A text message in WeChat's layout, its Content anything; half of them with one part
    changed (a name, a number, a separator, the element order or shape)."""
    change = draw(st.sampled_from(["none"] * 9 + ["to", "from", "time", "type", "id", "sep",
                                   "lead", "swap", "repeat", "drop", "attr", "bare"]))  # fmt: skip
    seps = [draw(good_seps) for _ in range(7)]
    if change == "sep":
        seps[draw(st.integers(0, 6))] = draw(bad_seps)
    to = draw(bad_ids if change == "to" else good_ids)
    sender = draw(bad_ids if change == "from" else good_ids)
    created = draw(bad_numbers if change == "time" else good_numbers)
    msg_id = draw(bad_numbers if change == "id" else good_numbers)
    msg_type = draw(st.sampled_from(["TEXT", "image", " text", "event", "Text"])) if (
        change == "type") else "text"  # fmt: skip
    elements = [
        f"<ToUserName><![CDATA[{to}]]></ToUserName>",
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        f"<Content><![CDATA[{draw(free_text)}]]></Content>",
        f"<MsgId>{msg_id}</MsgId>",
    ]
    at = draw(st.integers(0, len(elements) - 1))
    if change == "swap":
        elements[at], elements[-1] = elements[-1], elements[at]
    elif change == "repeat":
        elements.insert(at, elements[at])
    elif change == "drop":
        del elements[at]
    elif change == "attr":
        elements[at] = elements[at].replace(">", ' a="1">', 1)
    elif change == "bare":
        elements[4] = f"<Content>{draw(free_text)}</Content>"
    body = "".join(sep + element for sep, element in zip(seps, elements, strict=False))
    lead = draw(st.sampled_from([" ", "\n", "\ufeff", "<?xml version='1.0'?>"])) if (
        change == "lead") else ""  # fmt: skip
    return f"{lead}<xml>{body}{seps[-1]}</xml>"


@st.composite
def event_documents(draw: st.DrawFn) -> str:
    """An event in WeChat's layout (a click, a follow: EventKey or none), its key anything; half
    of them with one part changed."""
    change = draw(st.sampled_from(["none"] * 9 + ["to", "from", "time", "type", "event", "sep",
                                   "lead", "swap", "repeat", "drop", "attr", "bare", "extra",
                                   "nokey"]))  # fmt: skip
    seps = [draw(good_seps) for _ in range(7)]
    if change == "sep":
        seps[draw(st.integers(0, 6))] = draw(bad_seps)
    to = draw(bad_ids if change == "to" else good_ids)
    sender = draw(bad_ids if change == "from" else good_ids)
    created = draw(bad_numbers if change == "time" else good_numbers)
    msg_type = draw(st.sampled_from(["EVENT", "text", " event", "Event"])) if (
        change == "type") else "event"  # fmt: skip
    event = draw(st.sampled_from(["CLICK", "subscribe", "SUBSCRIBE", "unsubscribe", "VIEW",
                                  "scancode_push", "LOCATION", "subscribe_scan"]))  # fmt: skip
    if change == "event":
        event = draw(st.one_of(bad_ids, st.sampled_from(["", "a b", "x" * 65])))
    key = draw(st.one_of(free_text, st.sampled_from(
        ["MENU_BALANCE", "", " ", "qrscene_123", " qrscene_7 ", "scanbarcode|x", "scanimage|y",
         "QRSCENE_1", "qrscene_", "last_trade"])))  # fmt: skip
    elements = [
        f"<ToUserName><![CDATA[{to}]]></ToUserName>",
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
        f"<EventKey><![CDATA[{key}]]></EventKey>",
    ]
    at = draw(st.integers(0, len(elements) - 1))
    if change == "swap":
        elements[at], elements[-1] = elements[-1], elements[at]
    elif change == "repeat":
        elements.insert(at, elements[at])
    elif change == "drop":
        del elements[at]
    elif change == "nokey":
        del elements[-1]
    elif change == "attr":
        elements[at] = elements[at].replace(">", ' a="1">', 1)
    elif change == "bare":
        elements[-1] = f"<EventKey>{key}</EventKey>"
    elif change == "extra":
        elements.append("<Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRw]]></Ticket>")
    body = "".join(sep + element for sep, element in zip(seps, elements, strict=False))
    lead = draw(st.sampled_from([" ", "\n", "\ufeff", "<?xml version='1.0'?>"])) if (
        change == "lead") else ""  # fmt: skip
    return f"{lead}<xml>{body}{seps[-1]}</xml>"


@st.composite
def envelopes(draw: st.DrawFn) -> str:
    change = draw(st.sampled_from(["none"] * 5 + ["to", "encrypt", "sep", "swap", "repeat",
                                                  "extra", "bare"]))  # fmt: skip
    alphabet = st.text(alphabet=ALNUM + "+/=", min_size=1, max_size=80)
    encrypt = draw(st.one_of(st.just(""), free_text) if change == "encrypt" else alphabet)
    seps = [draw(good_seps) for _ in range(3)]
    if change == "sep":
        seps[draw(st.integers(0, 2))] = draw(bad_seps)
    elements = [
        f"<ToUserName><![CDATA[{draw(bad_ids if change == 'to' else good_ids)}]]></ToUserName>",
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>",
    ]
    if change == "swap":
        elements.reverse()
    elif change == "repeat":
        elements.append(elements[1])
    elif change == "extra":
        elements.insert(1, "<MsgType><![CDATA[text]]></MsgType>")
    elif change == "bare":
        elements[1] = f"<Encrypt>{encrypt}</Encrypt>"
    body = "".join(sep + element for sep, element in zip(seps, elements, strict=False))
    return f"<xml>{body}{seps[-1]}</xml>"


# --- parsing -------------------------------------------------------------------------------------


@settings(max_examples=400)
@given(text_documents())
def test_lean_text_reader_gives_parse_messages_fields(text: str) -> None:
    lean = cb._lean_text(text)
    if lean is not None:  # only what parse_message reads the same way
        fields: dict[str, str] = {}
        cb._flatten(parse_message(text)._data, "", 1, fields)
        assert lean == fields
    data = text.encode("utf-8")
    assert outcome(cb.parse, data) == outcome(reference_parse, data)


@settings(max_examples=400)
@given(event_documents())
def test_lean_event_reader_gives_parse_messages_fields(text: str) -> None:
    lean = cb._lean_event(text)
    if lean is not None:  # only what parse_message reads the same way
        fields: dict[str, str] = {}
        cb._flatten(parse_message(text)._data, "", 1, fields)
        assert lean == fields
    data = text.encode("utf-8")
    assert outcome(cb.parse, data) == outcome(reference_parse, data)


@pytest.mark.parametrize(
    "text",
    [
        # the protocol sheet's menu click and follow, a follow with an empty key, a newline
        # between the elements
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"
        "</FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey></xml>",
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"
        "</FromUserName><CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe]]></Event></xml>",
        "<xml><ToUserName><![CDATA[a]]></ToUserName>\n<FromUserName><![CDATA[b]]></FromUserName>"
        "\n<CreateTime>1</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA["
        "subscribe]]></Event>\n<EventKey><![CDATA[]]></EventKey>\n</xml>",
    ],
)
def test_wechats_clicks_and_follows_take_the_lean_path(text: str) -> None:
    lean = cb._lean_event(text)
    assert lean is not None
    fields: dict[str, str] = {}
    cb._flatten(parse_message(text)._data, "", 1, fields)
    assert lean == fields
    assert cb.parse(text.encode()) == reference_parse(text.encode())


def test_a_follow_by_qr_code_is_left_to_wechatpy() -> None:
    text = (
        "<xml><ToUserName><![CDATA[a]]></ToUserName><FromUserName><![CDATA[b]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA["
        "subscribe]]></Event><EventKey><![CDATA[qrscene_123]]></EventKey></xml>"
    )
    assert cb._lean_event(text) is None
    inbound = cb.parse(text.encode())
    assert (inbound.event, inbound.scene, inbound.event_key) == ("subscribe", "123",
                                                                  "qrscene_123")  # fmt: skip


@settings(max_examples=300)
@given(envelopes())
def test_lean_envelope_reader_gives_xmltodicts_encrypt(text: str) -> None:
    data = text.encode("utf-8")
    assert outcome(lambda body: cb._read_envelope(body)[0], data) == outcome(
        reference_envelope, data
    )
    if outcome(cb._read_envelope, data)[0] == "ok":
        encrypt, raw = cb._read_envelope(data)
        if raw is not None:  # decoded by the lean reader: as unwrap would have
            assert raw == base64.b64decode(encrypt, validate=True)


@pytest.mark.parametrize(
    "text",
    [
        # the protocol sheet's text sample and vector F's plaintext
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]>"
        "</FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId></xml>",
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
        f"{OPENID}]]></FromUserName><CreateTime>1409304348</CreateTime><MsgType><![CDATA[text]]>"
        "</MsgType><Content><![CDATA[hello]]></Content><MsgId>1234567890123456</MsgId></xml>",
        # vector C's layout: a newline between the elements
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA["
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n"
        "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n"
        "<MsgId>6054768590064713728</MsgId>\n</xml>",
        # line ends and surrounding whitespace, as expat and xmltodict leave them
        "<xml><ToUserName><![CDATA[a]]></ToUserName><FromUserName><![CDATA[b]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ 余额\r\n"
        "查询\r ]]></Content><MsgId>2</MsgId></xml>",
    ],
)
def test_wechats_text_messages_take_the_lean_path(text: str) -> None:
    lean = cb._lean_text(text)
    assert lean is not None
    fields: dict[str, str] = {}
    cb._flatten(parse_message(text)._data, "", 1, fields)
    assert lean == fields
    assert cb.parse(text.encode()) == reference_parse(text.encode())


@pytest.mark.parametrize("content", ["\x01", "a]]>b", "\ufffe", "x\x00"])
def test_hostile_content_in_the_lean_layout_is_still_refused(content: str) -> None:
    text = (
        "<xml><ToUserName><![CDATA[a]]></ToUserName><FromUserName><![CDATA[b]]></FromUserName>"
        "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>2</MsgId></xml>"
    )
    assert cb._lean_text(text) is None
    with pytest.raises(BadCallbackError):
        cb.parse(text.encode())


def test_safe_mode_envelope_takes_the_lean_path() -> None:
    body = f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[QUJD+/0=]]>"
    assert cb._LEAN_ENVELOPE.fullmatch(body + "</Encrypt></xml>") is not None


# --- rendering and sealing -------------------------------------------------------------------


@settings(max_examples=200)
@given(free_text, any_ids, any_ids, st.integers(0, 2**40))
def test_text_reply_template_is_wechatpys_render(
    content: str, source: str, target: str, timestamp: int
) -> None:
    wechatpy = WxTextReply(content=content, source=source, target=target, time=timestamp)
    assert cb._render_text(content, source, target, timestamp) == wechatpy.render()


@settings(max_examples=100)
@given(free_text, st.integers(0, 2**40))
def test_render_reply_text_is_wechatpys_render(content: str, timestamp: int) -> None:
    keys = cb.CallbackKeys(TOKEN, AES_KEY, APPID, ORIGINAL_ID, "safe")
    inbound = cb.Inbound("text", "", OPENID, ORIGINAL_ID, 1, "1", "hi", "", "", {}, False)
    ours = cb.render_reply(keys, inbound, TextReply(content), encrypt=False,
                           timestamp=timestamp, nonce="1")  # fmt: skip
    theirs = WxTextReply(content=cb._cdata(content), source=ORIGINAL_ID, target=OPENID,
                         time=timestamp).render()  # fmt: skip
    assert ours == theirs.encode("utf-8")


@settings(max_examples=200)
@given(
    st.text(max_size=300).map(lambda s: s.encode("utf-8")),
    st.text(alphabet=ALNUM, min_size=1, max_size=64),
    st.integers(0, 2**40),
    st.text(alphabet=ALNUM, min_size=16, max_size=16),
)
def test_envelope_is_wechatpys_encrypt_message(
    xml: bytes, nonce: str, timestamp: int, prefix: str
) -> None:
    ours = cb._AccountCrypto(TOKEN, AES_KEY, APPID, random=lambda: prefix).wrap(
        xml, nonce, timestamp
    )
    wechatpy = WeChatCrypto(TOKEN, AES_KEY, APPID)
    theirs = wechatpy._encrypt_message(
        xml, nonce, str(timestamp), lambda key: _wechatpy_prp(prefix, key)
    )
    assert ours == theirs
    signature = ours.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    assert wechatpy.decrypt_message(ours, signature, str(timestamp), nonce) == xml.decode()


# One instance for every example and every message: its cipher contexts chain on from one
# message to the next, as in a receiver that runs for weeks.
_LONG_LIVED = cb._AccountCrypto(TOKEN, AES_KEY, APPID)
_WECHATPY = WeChatCrypto(TOKEN, AES_KEY, APPID)

prefixes = st.text(alphabet=ALNUM, min_size=16, max_size=16)
steps = st.one_of(
    st.tuples(st.just("seal"), st.binary(max_size=600), prefixes),
    st.tuples(st.just("open"), st.binary(max_size=600), prefixes),
    # a ciphertext that decrypts to garbage: refused, and the contexts must stay right
    st.tuples(st.just("junk"), st.integers(2, 40).flatmap(lambda n: st.binary(min_size=16 * n,
                                                                              max_size=16 * n)),
              prefixes),
)  # fmt: skip


def _wechatpy_prp(prefix: str, key: bytes | None = None) -> PrpCrypto:
    """wechatpy's own message crypto, with the random prefix given."""
    prp = PrpCrypto(key or _WECHATPY.key)
    prp.get_random_string = lambda: prefix
    return prp


@settings(max_examples=300)
@given(st.lists(steps, min_size=1, max_size=12))
def test_long_lived_cipher_is_wechatpys_for_every_message(
    sequence: list[tuple[str, bytes, str]],
) -> None:
    import base64

    for kind, data, prefix in sequence:
        if kind == "seal":
            _LONG_LIVED._random = lambda prefix=prefix: prefix
            ours = _LONG_LIVED.seal(data)
            assert ours == _wechatpy_prp(prefix).encrypt(data, APPID).decode("ascii")
        elif kind == "open":  # wechatpy seals, ours opens
            sealed = _wechatpy_prp(prefix).encrypt(data, APPID).decode("ascii")
            assert _LONG_LIVED.unwrap(sealed) == data
        else:
            with pytest.raises(BankwxError):
                _LONG_LIVED.unwrap(base64.b64encode(data).decode("ascii"))

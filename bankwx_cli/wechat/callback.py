"""The callback protocol: verify, decrypt, parse and render replies (protocol sheet §1-§3).

`open_callback()` turns one POST (query and body) into an `Inbound` of plain values, or raises
`BadSignatureError` (HTTP 403: not from WeChat, not for this account, or replayed) or
`BadCallbackError` (HTTP 400: malformed or hostile). `render_reply()` turns a `Reply` into the
response body, encrypted when asked (or later, by `seal_reply()`). Nothing else in bankwx imports
wechatpy for callbacks.

Order of checks, cheapest and least trusting first:

1. the 3-part `signature` over the query (every mode), then the query's `timestamp` against the
   replay window and the `nonce`'s shape;
2. the body screen: size, NUL bytes, DOCTYPE/ENTITY declarations, UTF-8 (see `_screen`);
3. compatible and safe mode: `msg_signature` over the envelope's `Encrypt`, before decrypting;
   then AES-CBC, padding, length and appid. Every way of failing after a valid `msg_signature`
   is the same `BadSignatureError`, so that the answer is no padding or format oracle to
   someone who holds the token but not the key;
4. the message, parsed by wechatpy's `parse_message` and read into plain values inside one
   guard that turns any exception into `BadCallbackError` (wechatpy raises KeyError,
   ExpatError, AttributeError, TypeError, ... on bad input: protocol sheet §8);
5. `ToUserName` must be this account's original id (`BadSignatureError`).

The hot shapes have a lean path, for speed only: a safe-mode envelope and a text message in
WeChat's own layout are read with one anchored regular expression each, and a text reply is
rendered from a template. The expressions accept only documents that are well-formed XML and
give exactly what xmltodict and wechatpy give (same `Encrypt`, same fields, after XML's
line-end normalisation and xmltodict's whitespace stripping); anything else, hostile input
included, takes the wechatpy path. tests/wechat/test_callback_fastpath.py proves the
equivalence with Hypothesis: same result or same error for any input, same reply bytes.

Compatible mode routes only on the decrypted message: the plaintext copy of the fields next to
`Encrypt` carries no signature and is ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, NamedTuple
from xml.parsers import expat

import xmltodict  # type: ignore[import-untyped]  # wechatpy's XML parser; no type hints
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import SubscribeScanEvent
from wechatpy.replies import ArticlesReply, TransferCustomerServiceReply
from wechatpy.replies import ImageReply as WxImageReply

from bankwx_cli.errors import BadCallbackError, BadSignatureError, BankwxError, ValidationError
from bankwx_cli.keys import random_bytes
from bankwx_cli.models.replies import ImageReply, NewsReply, Reply, TextReply, TransferReply

__all__ = [
    "MAX_BODY_BYTES",
    "MODES",
    "CallbackKeys",
    "Inbound",
    "open_callback",
    "parse",
    "render_reply",
    "reply_success",
    "seal_reply",
    "verify_url",
]

MODES: Final = ("plain", "compatible", "safe")

#: Largest callback body accepted. WeChat's pushes are a few KB (a MASSSENDJOBFINISH with its
#: copyright results is the largest, compatible mode about triples it); 64 KiB leaves room.
MAX_BODY_BYTES: Final = 64 * 1024

_MAX_DEPTH: Final = 8  # deepest real push: xml/CopyrightCheckResult/ResultList/item/field
# Bodies this long are screened for depth before xmltodict reads them (``_refuse_deep``); a
# shorter one costs xmltodict little however it nests.
_DEPTH_SCREEN_CHARS: Final = 4096
_JOB_EVENTS: Final = frozenset({"templatesendjobfinish", "masssendjobfinish"})
_QR_PREFIX: Final = "qrscene_"

_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # appid, original id, openid
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")  # MsgType, Event


def _is_nonce(text: str) -> bool:
    """A nonce WeChat may send: 1 to 64 ASCII letters and digits (``[A-Za-z0-9]{1,64}``), by
    str methods, where a regular expression cost more (a callback checks its nonce twice)."""
    return 0 < len(text) <= 64 and text.isascii() and text.isalnum()


def _is_digits(text: str) -> bool:
    """1 to 20 ASCII digits (``[0-9]{1,20}``: a timestamp, CreateTime, MsgId; no sign, no
    spaces, no "1_0"), by str methods."""
    return 0 < len(text) <= 20 and text.isascii() and text.isdigit()


# Characters XML 1.0 cannot carry, even in CDATA (C0 controls, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# The lean path's shapes (see the module docstring): XML whitespace between elements only;
# names and numbers in the alphabets `_read` accepts, so that nothing needs stripping there.
_S = r"[ \t\r\n]*"
_LEAN_ENVELOPE = re.compile(
    rf"<xml>{_S}<ToUserName><!\[CDATA\[[A-Za-z0-9_-]{{1,64}}\]\]></ToUserName>{_S}"
    rf"<Encrypt><!\[CDATA\[([^\]]+)\]\]></Encrypt>{_S}</xml>"
)
# The same, on the body's bytes. Its Encrypt is taken only when it decodes as strict base64
# (which the decryption does anyway, and which a character class would check at 20
# instructions a character): then the body is ASCII, with no NUL and no DOCTYPE, and needs
# neither `_screen` nor decoding.
_LEAN_ENVELOPE_BYTES = re.compile(_LEAN_ENVELOPE.pattern.encode("ascii"))
# A CDATA section's text that XML can carry and that does not end the section: characters of
# XML 1.0 (`_NOT_XML`'s complement) with "]" only where "]>" does not follow. One character
# class repeated, not `.*?`: a lazy group tries the rest of the pattern after each character.
_XML_CHAR = r"[\t\n\r\x20-\x5c\x5e-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"  # but "]"
_CDATA_TEXT = rf"({_XML_CHAR}*(?:\](?!\]>){_XML_CHAR}*)*)"
_LEAN_TEXT = re.compile(
    rf"<xml>{_S}<ToUserName><!\[CDATA\[([A-Za-z0-9_-]{{1,64}})\]\]></ToUserName>{_S}"
    rf"<FromUserName><!\[CDATA\[([A-Za-z0-9_-]{{1,64}})\]\]></FromUserName>{_S}"
    rf"<CreateTime>([0-9]{{1,20}})</CreateTime>{_S}"
    rf"<MsgType><!\[CDATA\[text\]\]></MsgType>{_S}"
    rf"<Content><!\[CDATA\[{_CDATA_TEXT}\]\]></Content>{_S}"
    rf"<MsgId>([0-9]{{1,20}})</MsgId>{_S}</xml>"
)
_LEAN_EVENT = re.compile(
    rf"<xml>{_S}<ToUserName><!\[CDATA\[([A-Za-z0-9_-]{{1,64}})\]\]></ToUserName>{_S}"
    rf"<FromUserName><!\[CDATA\[([A-Za-z0-9_-]{{1,64}})\]\]></FromUserName>{_S}"
    rf"<CreateTime>([0-9]{{1,20}})</CreateTime>{_S}"
    rf"<MsgType><!\[CDATA\[event\]\]></MsgType>{_S}"
    rf"<Event><!\[CDATA\[([A-Za-z0-9_]{{1,64}})\]\]></Event>{_S}"
    rf"(?:<EventKey><!\[CDATA\[{_CDATA_TEXT}\]\]></EventKey>{_S})?</xml>"
)
# A follow with one of these keys is renamed by parse_message (a QR code, a product page):
# left to it.
_RENAMED_KEYS: Final = ("scanbarcode|", "scanimage|", _QR_PREFIX)


# --- Keys and crypto ---------------------------------------------------------------------------


def _random_prefix() -> str:
    """``secrets.token_hex(8)``, the 16 random characters that lead an encrypted reply (§1.6),
    from the process's buffered system randomness (a system call for 512 replies)."""
    return random_bytes(8).hex()


class _ChainedCBC:
    """AES-256-CBC with WeChat's fixed IV (the key's first 16 bytes, §1.5), on one cipher
    context per direction for the life of the account, where wechatpy makes one a message.

    A CBC context chains each message from the last ciphertext block it handled, not from the
    IV: the first block of each message is corrected by that block XOR the IV (encrypting, on
    the plaintext before; decrypting, on the plaintext after), which gives exactly what a fresh
    context with the IV gives (tests/wechat/test_callback_fastpath.py compares it with
    wechatpy's cipher). Lengths must be multiples of 16. Thread-safe.
    """

    __slots__ = ("_dec", "_dec_chain", "_enc", "_enc_chain", "_iv", "_lock")

    def __init__(self, key: bytes) -> None:
        cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self._iv = int.from_bytes(key[:16], "big")
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()
        self._enc_chain = self._dec_chain = self._iv
        self._lock = threading.Lock()

    def encrypt(self, padded: bytes) -> bytes:
        with self._lock:
            first = int.from_bytes(padded[:16], "big") ^ self._iv ^ self._enc_chain
            out: bytes = self._enc.update(first.to_bytes(16, "big") + padded[16:])
            self._enc_chain = int.from_bytes(out[-16:], "big")
        return out

    def decrypt(self, data: bytes) -> bytes:
        with self._lock:
            out: bytes = self._dec.update(data)
            chain, self._dec_chain = self._dec_chain, int.from_bytes(data[-16:], "big")
        first = int.from_bytes(out[:16], "big") ^ chain ^ self._iv
        return first.to_bytes(16, "big") + out[16:]


_BLOCK = 32  # WeChat pads to 32 bytes (wechatpy's PKCS7Encoder.block_size), not AES's 16


class _AccountCrypto:
    """One account's WeChatCrypto and AES cipher, built once (wechatpy builds one per call)."""

    __slots__ = ("_appid", "_cbc", "_random", "_token", "_wechat")

    def __init__(
        self, token: str, aes_key: str, appid: str, random: Callable[[], str] | None = None
    ) -> None:
        self._wechat = WeChatCrypto(token, aes_key, appid)
        self._cbc = _ChainedCBC(self._wechat.key)
        self._random = random or _random_prefix
        self._appid = appid.encode("ascii")
        self._token = token

    def seal(self, xml: bytes) -> str:
        """`Encrypt` of xml: wechatpy's PrpCrypto.encrypt (random prefix, length, appid, 32-byte
        PKCS#7), on the account's cipher contexts."""
        text = b"".join((self._random().encode(), struct.pack(">I", len(xml)), xml, self._appid))
        pad = _BLOCK - len(text) % _BLOCK
        sealed = self._cbc.encrypt(text + bytes((pad,)) * pad)
        return binascii.b2a_base64(sealed, newline=False).decode("ascii")  # b64encode's own

    def wrap(self, xml: bytes, nonce: str, timestamp: int) -> str:
        """The encrypted reply envelope (section 1.6), from a template: the same text as
        wechatpy's encrypt_message (the lean path; tests/wechat/test_callback_fastpath.py
        compares them)."""
        encrypt = self.seal(xml)
        ts = str(timestamp)
        signature = _sign(self._token, ts, nonce, encrypt)
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
            f"<TimeStamp>{ts}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )

    def unwrap(self, encrypt: str, raw: bytes | None = None) -> bytes:
        """The message XML inside `Encrypt` (§1.5), or BadSignatureError whatever went wrong.
        ``raw``: encrypt already decoded (strict base64), if it was.

        Stricter than wechatpy's decrypt, which ignores the padding value and would slice past
        the buffer: anything but a well-formed plaintext that names this appid is refused.
        """
        if raw is None:
            try:
                raw = base64.b64decode(encrypt, validate=True)
            except ValueError:  # binascii.Error, or a non-ASCII str
                raw = b""
        if len(raw) >= 32 and len(raw) % 16 == 0:
            plain = self._cbc.decrypt(raw)
            end = len(plain) - plain[-1]
            if 1 <= plain[-1] <= 32 and end >= 20:
                (length,) = struct.unpack_from(">I", plain, 16)
                stop = 20 + length
                if stop <= end and plain[stop:end] == self._appid:
                    return plain[20:stop]
        raise BadSignatureError("Encrypt does not decrypt to a message for this account.")


@lru_cache(maxsize=256)
def _account_crypto(token: str, aes_key: str, appid: str) -> _AccountCrypto:
    return _AccountCrypto(token, aes_key, appid)


@dataclass(frozen=True, slots=True)
class CallbackKeys:
    """What the receiver knows about one account. Build it once per account and keep it.

    The crypto is built on construction (and shared between equal keys), so a request pays
    for none of it. `token` and `aes_key` stay out of the repr.
    """

    token: str = field(repr=False)
    aes_key: str | None = field(repr=False)
    appid: str
    original_id: str
    mode: str  # "plain" | "compatible" | "safe"
    _crypto: _AccountCrypto | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValidationError(f"callback mode '{self.mode}' is not one of {', '.join(MODES)}.")
        if not _TOKEN.fullmatch(self.token):
            raise ValidationError("the callback Token must be 3 to 32 letters or digits.")
        for name, value in (("appid", self.appid), ("original id", self.original_id)):
            if not _ID.fullmatch(value):
                raise ValidationError(f"the {name} '{value}' is not a WeChat id.")
        if self.aes_key is not None and not _AES_KEY.fullmatch(self.aes_key):
            raise ValidationError("the EncodingAESKey must be exactly 43 letters or digits.")
        if self.aes_key is None and self.mode != "plain":
            raise ValidationError(f"{self.mode} mode needs the account's EncodingAESKey.")
        crypto = _account_crypto(self.token, self.aes_key, self.appid) if self.aes_key else None
        object.__setattr__(self, "_crypto", crypto)


# --- Inbound messages --------------------------------------------------------------------------


class Inbound(NamedTuple):
    """One message or event as plain values (protocol sheet §2); immutable (a named tuple:
    made once a callback, on the hot path, where a frozen dataclass's ``__init__`` cost two
    microseconds).

    - `msg_type`: MsgType lower-cased (text, image, voice, video, shortvideo, location, link,
      miniprogrampage, event, or an unknown type as sent).
    - `event`: Event lower-cased, "" for messages. A follow through a parametric QR code is
      `event="subscribe"` (wechatpy calls it "subscribe_scan") with `scene` the scene value.
    - `msg_id`: MsgId of a message; the MsgID of TEMPLATESENDJOBFINISH/MASSSENDJOBFINISH; else "".
    - `content`: a text message's Content, an event's EventKey as sent, else "".
    - `event_key`: EventKey as sent ("qrscene_123" for a QR follow), "" if none.
    - `scene`: the QR scene of a QR follow (prefix stripped) or of a SCAN event, else "".
    - `fields`: every field of the message as text, for the log and for what has no attribute
      here: Location_X/Location_Y/Scale/Label (location), Title/Description/Url (link),
      MediaId/PicUrl/Format/ThumbMediaId (media), Latitude/Longitude/Precision (LOCATION),
      Status/TotalCount/SentCount/... (job results), KfAccount, ... Nested elements are joined
      with dots ("SendLocationInfo.Label", "ScanCodeInfo.ScanResult"); repeated nested elements
      get an index ("SendPicsInfo.PicList.item.0.PicMd5Sum"). Empty elements are "".
    - `encrypted`: the message came out of an `Encrypt` envelope.
    """

    msg_type: str
    event: str
    openid: str
    to: str
    create_time: int
    msg_id: str
    content: str
    event_key: str
    scene: str
    fields: dict[str, str]
    encrypted: bool

    def dedup_key(self) -> str:
        """The key WeChat's retries share (§2.3): they repeat the body, not the query.

        A message by MsgId; a job-finished event by its kind and MsgID; any other event by
        CreateTime, sender, event and key. (A message without MsgId, which WeChat does not
        send, falls back to sender, CreateTime and type.)
        """
        if self.msg_type != "event":
            if self.msg_id:
                return f"msg:{self.msg_id}"
            return f"msg:{self.openid}:{self.create_time}:{self.msg_type}"
        if self.msg_id:
            return f"event:{self.event}:{self.msg_id}"
        # CreateTime first: the keys of a busy hour sort by time, so that the store's unique
        # index takes them near its end (follower first scattered them across the index,
        # several pages written a callback)
        return f"event:{self.create_time}:{self.openid}:{self.event}:{self.event_key}"


def verify_url(keys: CallbackKeys, query: Mapping[str, str]) -> str:
    """Answer WeChat's URL verification (§1.2): the `echostr` to send back as the body.

    Raises BadSignatureError when `signature` is missing or wrong, BadCallbackError when the
    signed query carries no `echostr`.
    """
    _check_query_signature(keys, query)
    echostr = query.get("echostr", "")
    if not echostr:
        raise BadCallbackError("URL verification without an echostr.")
    return echostr


def open_callback(
    keys: CallbackKeys,
    query: Mapping[str, str],
    body: bytes,
    now: float,
    replay_window: float,
) -> Inbound:
    """Verify, decrypt and parse one callback POST (§1.3-§1.5, §2).

    `now` is Unix time; a query `timestamp` more than `replay_window` seconds away from it is
    refused. Raises BadSignatureError (403) for a missing or wrong `signature` or
    `msg_signature`, a timestamp outside the window, an `Encrypt` that does not decrypt for
    this appid, or a message addressed to another account; BadCallbackError (400) for a body
    that is not a well-formed WeChat message.
    """
    timestamp, nonce = _check_query_signature(keys, query)
    if not (_is_digits(timestamp) and abs(now - int(timestamp)) <= replay_window):
        raise BadSignatureError("timestamp outside the replay window.")
    if not _is_nonce(nonce):
        raise BadSignatureError("malformed nonce.")
    if keys._crypto is None or keys.mode == "plain":
        try:
            inbound = parse(body)
        except BadCallbackError:
            if b"<Encrypt>" in body:  # only on the error path: the hot path pays nothing
                raise BadCallbackError(
                    "an encrypted (safe or compatible mode) body for an account in plain mode: "
                    "set the account's mode to match WeChat's (bankwx account update NAME "
                    "--mode safe, with its --aes-key)."
                ) from None
            raise
    else:
        encrypt, raw = _read_envelope(body)
        if not _same(query.get("msg_signature", ""), _sign(keys.token, timestamp, nonce, encrypt)):
            raise BadSignatureError("msg_signature does not match.")
        inbound = _parse(keys._crypto.unwrap(encrypt, raw), encrypted=True)
    if inbound.to != keys.original_id:
        raise BadSignatureError("message not addressed to this account.")
    return inbound


def parse(xml: bytes) -> Inbound:
    """Parse one plaintext message with the hostile-input guards, verifying nothing.

    `open_callback` is the entry point for callbacks; this is the parser it uses, for tools
    and tests. Raises BadCallbackError for anything but a well-formed WeChat message.
    """
    return _parse(xml, encrypted=False)


# --- Replies -----------------------------------------------------------------------------------


def render_reply(
    keys: CallbackKeys,
    inbound: Inbound,
    reply: Reply,
    *,
    encrypt: bool,
    timestamp: int,
    nonce: str,
) -> bytes:
    """The passive reply to `inbound` as the HTTP response body (§3), encrypted if asked (§1.6).

    Addressed back to the follower, from the account, with CreateTime `timestamp`. Text is put
    into CDATA safely: "]]>" is split and characters XML cannot carry are dropped. `nonce`
    is used only to encrypt; then it raises ValueError as `seal_reply` does.
    """
    common: dict[str, Any] = {
        "source": keys.original_id,
        "target": inbound.openid,
        "time": timestamp,
    }
    if isinstance(reply, TextReply):
        xml: str = _render_text(_cdata(reply.content), keys.original_id, inbound.openid, timestamp)
    elif isinstance(reply, ImageReply):
        xml = WxImageReply(image=_cdata(reply.media_id), **common).render()
    elif isinstance(reply, NewsReply):
        a = reply.article
        article = {
            "title": _cdata(a.title),
            "description": _cdata(a.description),
            "image": _cdata(a.picurl),
            "url": _cdata(a.url),
        }
        xml = ArticlesReply(articles=[article], **common).render()
    else:
        xml = _render_transfer(reply, common)
    body = xml.encode("utf-8")
    return seal_reply(keys, body, timestamp=timestamp, nonce=nonce) if encrypt else body


def seal_reply(keys: CallbackKeys, reply: bytes, *, timestamp: int, nonce: str) -> bytes:
    """Wrap a reply `render_reply` rendered unencrypted in the encrypted envelope (§1.6).

    For a reply kept for WeChat's retries: render it once, seal it for each response.
    Raises ValueError without an EncodingAESKey, or for a nonce that is not 1 to 64 letters
    or digits (the request's nonce always is: `open_callback` refuses any other).
    """
    if keys._crypto is None:
        raise ValueError("an encrypted reply needs the account's EncodingAESKey")
    if not _is_nonce(nonce):
        raise ValueError("the reply nonce must be 1 to 64 letters or digits")
    return keys._crypto.wrap(reply, nonce, timestamp).encode("utf-8")


def reply_success() -> bytes:
    """The body that tells WeChat "no reply" in every mode (§3.1)."""
    return b"success"


def _render_text(content: str, source: str, target: str, timestamp: int) -> str:
    """wechatpy's `TextReply(content=..., source=..., target=..., time=...).render()`, byte for
    byte (the lean path; tests/wechat/test_callback_fastpath.py compares them)."""
    return (
        f"<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[{content}]]></Content>\n"
        f"<FromUserName><![CDATA[{source}]]></FromUserName>\n"
        f"<ToUserName><![CDATA[{target}]]></ToUserName>\n"
        f"<CreateTime>{int(timestamp)}</CreateTime>\n</xml>"
    )


def _render_transfer(reply: TransferReply, common: dict[str, Any]) -> str:
    xml: str = TransferCustomerServiceReply(**common).render()
    if not reply.kf_account:
        return xml
    # wechatpy's transfer reply has no TransInfo (§8); its render ends with "\n</xml>".
    kf = f"<TransInfo><KfAccount><![CDATA[{_cdata(reply.kf_account)}]]></KfAccount></TransInfo>"
    return f"{xml[: -len('</xml>')]}{kf}\n</xml>"


@lru_cache(maxsize=1024)  # replies repeat: a rule's text, the default reply
def _cdata(text: str) -> str:
    return _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>")


# --- Internals ---------------------------------------------------------------------------------


def _sign(*parts: str) -> str:
    """WeChat's signature (§1.2, §1.5): SHA-1 of the sorted parts, joined, as lowercase hex."""
    joined = "".join(sorted(parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - the protocol is SHA-1


def _same(given: str, expected: str) -> bool:
    # Constant time, unlike wechatpy's `!=`; never raises on odd input.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("ascii"))


def _check_query_signature(keys: CallbackKeys, query: Mapping[str, str]) -> tuple[str, str]:
    timestamp = query.get("timestamp", "")
    nonce = query.get("nonce", "")
    if not _same(query.get("signature", ""), _sign(keys.token, timestamp, nonce)):
        raise BadSignatureError("signature does not match.")
    return timestamp, nonce


def _screen(data: bytes) -> str:
    """Refuse what must not reach the XML parser; the document as text.

    No DOCTYPE means no entity declarations: no billion laughs, no quadratic blowup, no
    external entity or DTD. (wechatpy's xmltodict also refuses entity declarations, and expat
    never fetches external ones; this check is the first wall, and costs a byte search.)
    Expat guesses UTF-16 from a leading "<\\0" even when told UTF-8, which would hide a
    DOCTYPE from the byte search: a NUL byte, never legal in XML, is refused first.
    """
    if len(data) > MAX_BODY_BYTES:
        raise BadCallbackError(f"callback body larger than {MAX_BODY_BYTES} bytes.")
    if not data or data.isspace():
        raise BadCallbackError("callback body is empty.")
    # find(), not `in`: for bytes, `in` first tries its operand as an integer and raises and
    # clears a TypeError each time
    if data.find(b"\x00") != -1:
        raise BadCallbackError("callback body contains a NUL byte.")
    if data.find(b"<!DOCTYPE") != -1 or data.find(b"<!ENTITY") != -1:
        raise BadCallbackError("callback body declares a DOCTYPE or entities.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadCallbackError("callback body is not UTF-8.") from None


class _Refused(Exception):
    pass


def _refuse_deep(text: str) -> None:
    """Refuse a long document with an element nested past ``_flatten``'s limit, or a field of
    the root repeated, before xmltodict builds it: expat stops at the first such element, where
    xmltodict would make every level or every repetition first (thousands of them in a hostile
    body: tens of milliseconds, more with a large heap to collect). Of a message, only what
    ``_flatten`` refuses anyway is refused here, with its message (a body with two faults may be
    named by the other one): an element at level _MAX_DEPTH + 1 below the root, a name twice
    among the root's fields. An envelope so made is refused too, though its reading takes its
    Encrypt alone: WeChat's has two or three fields, none nested. A body expat cannot read is
    left to xmltodict, and its error."""
    if len(text) < _DEPTH_SCREEN_CHARS:
        return
    depth = 0
    fields: set[str] = set()

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth == 2:  # a field of the root (the root is depth 1)
            if name in fields:
                raise _Refused(f"field '{name}' repeated.")
            fields.add(name)
        elif depth > _MAX_DEPTH + 1:
            raise _Refused("elements nested too deeply.")

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text, True)
    except _Refused as refused:
        raise BadCallbackError(str(refused)) from None
    except expat.ExpatError:
        return


def _read_envelope(body: bytes) -> tuple[str, bytes | None]:
    """The `Encrypt` text of a compatible or safe mode body, and its bytes when the lean
    reader decoded them (None: `unwrap` decodes)."""
    if len(body) <= MAX_BODY_BYTES:
        lean = _LEAN_ENVELOPE_BYTES.fullmatch(body)
        if lean is not None:
            encrypt = lean[1]
            try:
                raw = binascii.a2b_base64(encrypt, strict_mode=True)
            except binascii.Error:
                pass  # not base64: xmltodict's reading, and its errors
            else:
                return encrypt.decode("ascii"), raw
    text = _screen(body)
    _refuse_deep(text)
    try:
        root = xmltodict.parse(text)["xml"]
        encrypt = root["Encrypt"]
    except Exception as exc:
        raise BadCallbackError(
            f"callback body is not an encrypted envelope ({_kind(exc)})."
        ) from exc
    if not isinstance(encrypt, str) or not encrypt:
        raise BadCallbackError("the envelope's Encrypt is empty or repeated.")
    return encrypt, None


def _parse(xml: bytes, *, encrypted: bool) -> Inbound:
    text = _screen(xml)
    try:
        lean = _lean_text(text)
        if lean is not None:  # `_read_fields` of it: the shapes it checks, the regex checked
            return Inbound("text", "", lean["FromUserName"], lean["ToUserName"],
                           int(lean["CreateTime"]), lean["MsgId"], lean["Content"], "", "",
                           lean, encrypted)  # fmt: skip
        lean = _lean_event(text)
        if lean is not None:  # likewise (never a renamed follow, never a job's MsgID)
            event, key = lean["Event"].lower(), lean.get("EventKey", "")
            return Inbound("event", event, lean["FromUserName"], lean["ToUserName"],
                           int(lean["CreateTime"]), "", key, key, key if event == "scan" else "",
                           lean, encrypted)  # fmt: skip
        _refuse_deep(text)
        message = parse_message(text)
        return _read(message._data, isinstance(message, SubscribeScanEvent), encrypted)
    except BankwxError:
        raise
    except Exception as exc:
        raise BadCallbackError(f"callback body is not a WeChat message ({_kind(exc)}).") from exc


def _lean_text(text: str) -> dict[str, str] | None:
    """The fields `_read` makes of parse_message's dict for a text message in WeChat's
    layout, or None (not that shape).

    Content is what expat and xmltodict make of the CDATA: line ends normalised to LF,
    whitespace stripped. A Content that XML cannot carry (a character outside XML 1.0, or
    "]]>") is left to the wechatpy path and its errors.
    """
    found = _LEAN_TEXT.fullmatch(text)
    if found is None:
        return None
    to, sender, created, content, msg_id = found.groups()  # content: XML's, no "]]>"
    if "\r" in content:
        content = content.replace("\r\n", "\n").replace("\r", "\n")
    return {
        "ToUserName": to,
        "FromUserName": sender,
        "CreateTime": created,
        "MsgType": "text",
        "Content": content.strip(),
        "MsgId": msg_id,
    }


def _lean_event(text: str) -> dict[str, str] | None:
    """The fields `_read` makes of parse_message's dict for an event in WeChat's layout with
    at most an EventKey besides the common fields (a menu click, a plain follow or unfollow),
    or None (not that shape, or a follow that parse_message renames).

    EventKey is what expat and xmltodict make of the CDATA, as for `_lean_text`'s Content.
    """
    found = _LEAN_EVENT.fullmatch(text)
    if found is None:
        return None
    to, sender, created, event, key = found.groups()
    if event.lower().startswith("subscribe_scan"):  # parse_message's own names: its reading
        return None
    fields = {
        "ToUserName": to,
        "FromUserName": sender,
        "CreateTime": created,
        "MsgType": "event",
        "Event": event,
    }
    if key is not None:  # XML's characters, no "]]>"
        if "\r" in key:
            key = key.replace("\r\n", "\n").replace("\r", "\n")
        key = key.strip()
        if key.startswith(_RENAMED_KEYS) and event.lower() == "subscribe":
            return None
        fields["EventKey"] = key
    return fields


def _kind(exc: Exception) -> str:
    return type(exc).__name__


def _read(data: Any, scan: bool, encrypted: bool) -> Inbound:
    """Every value the Inbound exposes, read and checked now (wechatpy reads lazily).

    data is parse_message's raw dict (one rename, undone below); scan says that
    parse_message made it a SubscribeScanEvent.
    """
    fields: dict[str, str] = {}
    _flatten(data, "", 1, fields)
    return _read_fields(fields, scan, encrypted)


def _read_fields(fields: dict[str, str], scan: bool, encrypted: bool) -> Inbound:
    msg_type = _required(fields, "MsgType", _NAME.fullmatch).lower()
    event = event_key = scene = msg_id = content = ""
    if msg_type == "event":
        event = _required(fields, "Event", _NAME.fullmatch).lower()
        if event in ("subscribe_scan", "subscribe_scan_product"):
            # parse_message renames a follow through a QR code or a product page and strips
            # "qrscene_" from EventKey: give the follow back its name and its key as sent.
            event = fields["Event"] = "subscribe"
            if scan:
                scene = fields["EventKey"]
                fields["EventKey"] = _QR_PREFIX + scene
        event_key = content = fields.get("EventKey", "")
        if event == "scan":
            scene = event_key
        if event in _JOB_EVENTS:
            msg_id = _optional(fields, "MsgID")
    else:
        msg_id = _optional(fields, "MsgId") or _optional(fields, "MsgID")
        if msg_type == "text":
            content = fields.get("Content", "")
    return Inbound(
        msg_type=msg_type,
        event=event,
        openid=_required(fields, "FromUserName", _ID.fullmatch),
        to=_required(fields, "ToUserName", _ID.fullmatch),
        create_time=int(_required(fields, "CreateTime", _is_digits)),
        msg_id=msg_id,
        content=content,
        event_key=event_key,
        scene=scene,
        fields=fields,
        encrypted=encrypted,
    )


def _flatten(value: Any, prefix: str, depth: int, out: dict[str, str]) -> None:
    if not isinstance(value, dict):
        raise BadCallbackError("the document's root is not an element with fields.")
    if depth > _MAX_DEPTH:
        raise BadCallbackError("elements nested too deeply.")
    for name, item in value.items():
        key = prefix + name
        if isinstance(item, list):
            if depth == 1:
                raise BadCallbackError(f"field '{name}' repeated.")
            for index, element in enumerate(item):
                _put(element, f"{key}.{index}", depth + 1, out)
        else:
            _put(item, key, depth, out)


def _put(value: Any, key: str, depth: int, out: dict[str, str]) -> None:
    if value is None:
        out[key] = ""
    elif isinstance(value, str):
        out[key] = value
    else:
        _flatten(value, key + ".", depth + 1, out)


def _required(fields: Mapping[str, str], name: str, shape: Callable[[str], object]) -> str:
    value = fields.get(name)
    if value is None:
        raise BadCallbackError(f"field '{name}' missing.")
    if not shape(value):
        raise BadCallbackError(f"field '{name}' malformed.")
    return value


def _optional(fields: Mapping[str, str], name: str) -> str:
    return _required(fields, name, _is_digits) if fields.get(name) else ""

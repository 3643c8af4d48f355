"""WeChat's signing and message encryption (WXBizMsgCrypt), written from the protocol sheet.

The simulator must not share the product's code (nor wechatpy), so this is an independent
implementation of §1.2-§1.6, checked against the §1.7 vectors in tests/sim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bankwx_cli.sim.xmlutil import XmlError, cdata, parse_xml

BLOCK_SIZE = 32  # PKCS#7 block size of WXBizMsgCrypt (AES itself uses 16-byte blocks)
_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_RANDOM_ALPHABET = string.ascii_letters + string.digits

# Error codes of the official sample SDK (§1.5), kept so that messages read the same.
SIGNATURE_MISMATCH = -40001
PARSE_XML_ERROR = -40002
ILLEGAL_AES_KEY = -40004
APPID_MISMATCH = -40005
DECRYPT_ERROR = -40007
ILLEGAL_BUFFER = -40008
BASE64_DECODE_ERROR = -40010


class SimCryptoError(Exception):
    """A signature, key, ciphertext or envelope that WeChat would refuse."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(f"{message} ({code})")


def _sha1(parts: list[str]) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - the protocol


def signature(token: str, timestamp: str, nonce: str) -> str:
    """The 3-part signature of URL verification and of every push (§1.2)."""
    return _sha1([token, timestamp, nonce])


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The 4-part signature over an ``Encrypt`` value (§1.5)."""
    return _sha1([token, timestamp, nonce, encrypt])


def signatures_match(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (lenient on the last char)."""
    if not _KEY_RE.fullmatch(encoding_aes_key):
        raise SimCryptoError(ILLEGAL_AES_KEY, "EncodingAESKey must be 43 letters or digits")
    return base64.b64decode(encoding_aes_key + "=")


def random_string(length: int = 16) -> str:
    """Random alphanumerics as the official samples use for the 16 random bytes and nonces."""
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(length))


def pkcs7_pad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    n = block_size - len(data) % block_size
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block_size: int = BLOCK_SIZE) -> bytes:
    """Strip PKCS#7 padding, refusing anything but well-formed padding."""
    if not data:
        raise SimCryptoError(ILLEGAL_BUFFER, "empty plaintext")
    n = data[-1]
    if not 1 <= n <= block_size or n > len(data) or data[-n:] != bytes([n]) * n:
        raise SimCryptoError(ILLEGAL_BUFFER, "bad padding")
    return data[:-n]


def encrypt(encoding_aes_key: str, appid: str, xml: bytes, random16: bytes | None = None) -> str:
    """Encrypt ``xml`` for ``appid``: the base64 ``Encrypt`` text (§1.5)."""
    key = aes_key(encoding_aes_key)
    prefix = random16 if random16 is not None else random_string().encode()
    if len(prefix) != 16:
        raise ValueError("random16 must be 16 bytes")
    plain = prefix + struct.pack(">I", len(xml)) + xml + appid.encode()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    cipher = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
    return base64.b64encode(cipher).decode()


def decrypt(encoding_aes_key: str, appid: str, encrypt_b64: str) -> bytes:
    """Decrypt an ``Encrypt`` text and check that it was made for ``appid``.

    Raises SimCryptoError on bad base64, length, padding, layout or appid.
    """
    key = aes_key(encoding_aes_key)
    try:
        cipher = base64.b64decode(encrypt_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SimCryptoError(BASE64_DECODE_ERROR, "Encrypt is not base64") from exc
    if not cipher or len(cipher) % 16:
        raise SimCryptoError(DECRYPT_ERROR, "ciphertext length is not a multiple of 16")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = pkcs7_unpad(decryptor.update(cipher) + decryptor.finalize())
    if len(plain) < 20:
        raise SimCryptoError(ILLEGAL_BUFFER, "plaintext too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise SimCryptoError(ILLEGAL_BUFFER, "message length exceeds the plaintext")
    if not hmac.compare_digest(plain[20 + length :], appid.encode()):
        raise SimCryptoError(APPID_MISMATCH, "appid does not match")
    return plain[20 : 20 + length]


def decrypt_signed(
    token: str,
    encoding_aes_key: str,
    appid: str,
    encrypt_b64: str,
    msg_sig: str,
    timestamp: str,
    nonce: str,
) -> bytes:
    """Check ``msg_sig`` over ``encrypt_b64`` first, then decrypt (the order of §1.5)."""
    if not signatures_match(msg_signature(token, timestamp, nonce, encrypt_b64), msg_sig):
        raise SimCryptoError(SIGNATURE_MISMATCH, "msg_signature does not match")
    return decrypt(encoding_aes_key, appid, encrypt_b64)


def build_envelope(
    token: str,
    encoding_aes_key: str,
    appid: str,
    xml: bytes,
    timestamp: str,
    nonce: str,
    random16: bytes | None = None,
) -> bytes:
    """The encrypted reply envelope of §1.6 around ``xml``."""
    enc = encrypt(encoding_aes_key, appid, xml, random16)
    sig = msg_signature(token, timestamp, nonce, enc)
    return (
        f"<xml>\n<Encrypt>{cdata(enc)}</Encrypt>\n<MsgSignature>{cdata(sig)}</MsgSignature>\n"
        f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce>{cdata(nonce)}</Nonce>\n</xml>"
    ).encode()


def parse_envelope(token: str, encoding_aes_key: str, appid: str, body: bytes) -> bytes:
    """Verify an encrypted reply envelope by its own fields and return the inner XML."""
    try:
        root = parse_xml(body)
    except XmlError as exc:
        raise SimCryptoError(PARSE_XML_ERROR, f"envelope is not XML: {exc}") from exc
    fields: dict[str, str] = {}
    for name in ("Encrypt", "MsgSignature", "TimeStamp", "Nonce"):
        found = root.findall(name)
        if len(found) != 1:
            raise SimCryptoError(PARSE_XML_ERROR, f"envelope needs exactly one <{name}>")
        fields[name] = (found[0].text or "").strip()
    return decrypt_signed(
        token,
        encoding_aes_key,
        appid,
        fields["Encrypt"],
        fields["MsgSignature"],
        fields["TimeStamp"],
        fields["Nonce"],
    )

"""WeChat's signing and AES, against the protocol sheet's §1.7 vectors and as properties."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.sim import crypto
from bankwx_cli.sim.followers import push_body, push_query
from bankwx_cli.sim.state import Account

KEY_A = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID_A = "wxb11529c136998cb6"
RANDOM_A = b"aaaabbbbccccdddd"

A1_PLAIN = "我是中文abcd123"
A1_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)
A2_PLAIN = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName>"
    "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime>"
    "<MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71"
    "s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]>"
    "</Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
)
A2_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkup"
    "qcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQv"
    "Fb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ0"
    "4sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9O"
    "xchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDa"
    "hxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yr"
    "f57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)

C_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8P"
    "GHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h"
    "6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQ"
    "l+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
C_PLAIN = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n"
    "<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n"
    "<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"
)
D_ENCRYPT = (
    "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGq"
    "S8jSI/WPeKB5VPr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWD"
    "bOPaE7ukZBTV2YqyzH+UI2AK+J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+I"
    "t+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtkaKdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCji"
    "cbP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GTF/XyE8yGzc4="
)
E_KEY = "A" * 43
E_APPID = "wx134c8103faa5a59e"
E_ENCRYPT = (
    "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1"
    "vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OB"
    "qCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxT"
    "fyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQ"
    "J15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWX"
    "bsTFHTYe0Mg=="
)
E_REPLY_ENCRYPT = (
    "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSv"
    "PT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
)
F_INBOUND = (
    "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2Tjjewbmi"
    "OUlr6X-1crbLOvLw]]></FromUserName><CreateTime>1409304348</CreateTime><MsgType><![CDATA[text]]>"
    "</MsgType><Content><![CDATA[hello]]></Content><MsgId>1234567890123456</MsgId></xml>"
)
F_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv27AKIBFtmZ9JQbUxl7mTFlM30NheKDRSmzml3///nmhaSs9xUACSIMHn2sNUrkj3j+HVrqBX"
    "fs8nIMswJFABgngUGbBiYfjjhO/r1fqDmmpmV1KE3PrzEd2OMju/XPP46n+xhuXx5fSIbBABuGUk5G05+xJlp8LRc5Cp"
    "TdpzFWyJQwGqFlfozlNqhZFTZH+BKi9Vfl6zOO9eF38NjiujPW7bus9Jha7ree8VnXrRu7j4sWLVZ0lreNUzzumBMz8z"
    "yid11tuaIfblwfKJvUeh2HyJzdkXYkNxcZ9IB6c2ej5r0AnG0PnKJ0+dkE5Rm1n0buG6WwitPPsUSXEAucvkACIxr79L"
    "q5+RBvM5Zx8P+Rgk1/fBK6OkpflD67Qy1cVkucPqqeRxecOBqiM3JhmUqD0="
)
F_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hi]]></Content>\n"
    "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName>\n"
    "<ToUserName><![CDATA[oia2TjjewbmiOUlr6X-1crbLOvLw]]></ToUserName>\n"
    "<CreateTime>1409304349</CreateTime>\n</xml>"
)
F_REPLY_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv2w047KP27GhO4BTqelnLzW5HIvKxFb78hYW9K/42NOZbKpdcyXL09tKgDnoRWh3ZkplqApry"
    "8Habin6alM6/wduBLORYHdoSXjfUNWZOUlnJbTY2OLf0MM2dyTr0hg1a0E03QHn3QIWemjZGKaOMKCgyxqO3hfiWHZAQ"
    "HLTLZOEM7MTLmtqcY8fsWjkHhjh5PkvHrdBIoQbDRL7xc+/6/VQ+4IcHxOdtVTm3pTYZoNu1tTtaq6+4SME+CoL9AoIt"
    "KVLjNJCadaumqFHPO/Wz2FznJd92LVQN1+FrqBD1ZWme0F+cMJ9kpFlPRSNLDpOkeUalW1yCpBYHEgDJGzjLdLh9OCs+p"
    "qvOGH2WOvi5umPm"
)


def test_url_verification_signature_official_example() -> None:
    sig = crypto.signature("AAAAA", "1714037059", "486452656")
    assert sig == "899cf89e464efb63f54ddac96b0a0a235f53aa78"


def test_vector_a_key_and_iv() -> None:
    key = crypto.aes_key(KEY_A)
    assert key.hex() == "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
    assert key[:16].hex() == "69b71d79f8218a39259a7a29aabb2dba"


@pytest.mark.parametrize(
    ("plain", "encrypted", "msg_sig"),
    [
        (A1_PLAIN, A1_ENCRYPT, "82c962d39941aa48552f90ef55aa323dc620cc10"),
        (A2_PLAIN, A2_ENCRYPT, "ea88b765074e41eb8c7a75b449db34fa2fd560d5"),
    ],
    ids=["A1", "A2"],
)
def test_vector_a_encrypt_and_sign(plain: str, encrypted: str, msg_sig: str) -> None:
    assert crypto.encrypt(KEY_A, APPID_A, plain.encode(), RANDOM_A) == encrypted
    assert crypto.msg_signature("pamtest", "1409304348", "xxxxxx", encrypted) == msg_sig
    assert crypto.decrypt(KEY_A, APPID_A, encrypted) == plain.encode()
    assert crypto.signature("pamtest", "1409304348", "xxxxxx") == (
        "76480565cbe296026c53aaacd1ad523a1ddba24f"
    )


def test_vector_c_compatible_mode_decryption() -> None:
    plain = crypto.decrypt_signed(
        "spamtest",
        KEY_A,
        "wx2c2769f8efd9abc2",
        C_ENCRYPT,
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
        "1409735669",
        "1320562132",
    )
    assert plain == C_PLAIN.encode()


def test_vector_d_safe_mode_decryption() -> None:
    plain = crypto.decrypt_signed(
        "spamtest",
        KEY_A,
        "wx2c2769f8efd9abc2",
        D_ENCRYPT,
        "003fee52ecc56afb46c00b5c7721be87860ce785",
        "1410349438",
        "298025754",
    )
    expected = C_PLAIN.replace("1409735668", "1410349438").replace(
        "6054768590064713728", "6057404712141979648"
    )
    assert plain == expected.encode()


def test_vector_e_current_doc_example_both_halves() -> None:
    plain = crypto.decrypt_signed(
        "AAAAA",
        E_KEY,
        E_APPID,
        E_ENCRYPT,
        "6c12a4205838198b8fa631b3220723bb07f1015c",
        "1715943329",
        "1590219412",
    )
    assert len(plain.decode()) == 292
    assert b"<Event><![CDATA[debug_demo]]></Event>" in plain
    assert b"o9AgO5Kd5ggOC-bXrbNODIiE3bGY" in plain
    assert b"gh_97417a04a28d" in plain
    assert b"<debug_str><![CDATA[hello world]]></debug_str>" in plain

    reply = b"<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
    envelope = crypto.build_envelope(
        "AAAAA", E_KEY, E_APPID, reply, "1713424427", "415670741", b"999951349e8ee746"
    )
    assert f"<Encrypt><![CDATA[{E_REPLY_ENCRYPT}]]></Encrypt>".encode() in envelope
    assert b"<MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]>" in envelope
    assert crypto.parse_envelope("AAAAA", E_KEY, E_APPID, envelope) == reply


def test_vector_b_wecom_echostr_decrypts_with_its_corp_id() -> None:
    echostr = (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    )
    key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    plain = crypto.decrypt_signed(
        "QDG6eK",
        key,
        "wx5823bf96d3bd56c7",
        echostr,
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "1409659589",
        "263014780",
    )
    assert plain == b"1616140317555161061"


def test_vector_f_inbound_push_in_safe_mode() -> None:
    account = Account(
        appid=APPID_A,
        secret="x" * 32,
        token="pamtest",
        aes_key=KEY_A,
        mode="safe",
        original_id="gh_7f083739789a",
    )
    encrypted = crypto.encrypt(KEY_A, APPID_A, F_INBOUND.encode(), RANDOM_A)
    assert encrypted == F_ENCRYPT
    query = push_query(account, "oia2TjjewbmiOUlr6X-1crbLOvLw", "1409304348", "xxxxxx", encrypted)
    assert query == {
        "signature": "76480565cbe296026c53aaacd1ad523a1ddba24f",
        "timestamp": "1409304348",
        "nonce": "xxxxxx",
        "openid": "oia2TjjewbmiOUlr6X-1crbLOvLw",
        "encrypt_type": "aes",
        "msg_signature": "7126671f4a3c7c37fba63dec1889334db5f09f81",
    }
    body = push_body(account, F_INBOUND.encode(), encrypted)
    assert body == (
        b"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>"
        b"<Encrypt><![CDATA[" + F_ENCRYPT.encode() + b"]]></Encrypt></xml>"
    )


def test_vector_f_plaintext_layout() -> None:
    key = crypto.aes_key(KEY_A)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(base64.b64decode(F_ENCRYPT)) + decryptor.finalize()
    assert len(padded) == 320
    assert padded[-1] == 13
    assert padded[:20].hex() == "616161616262626263636363646464640000010d"
    assert struct.unpack(">I", padded[16:20]) == (269,)


def test_vector_f_reply_envelope() -> None:
    envelope = crypto.build_envelope(
        "pamtest", KEY_A, APPID_A, F_REPLY.encode(), "1409304348", "xxxxxx", RANDOM_A
    )
    assert f"<Encrypt><![CDATA[{F_REPLY_ENCRYPT}]]></Encrypt>".encode() in envelope
    assert b"<MsgSignature><![CDATA[83ec0f57c766afe36bfcb17b71a8bb76c2ba1c21]]>" in envelope
    assert crypto.parse_envelope("pamtest", KEY_A, APPID_A, envelope) == F_REPLY.encode()


def test_wrong_appid_is_refused() -> None:
    with pytest.raises(crypto.SimCryptoError) as caught:
        crypto.decrypt(KEY_A, "wx0000000000000000", A1_ENCRYPT)
    assert caught.value.code == crypto.APPID_MISMATCH


@pytest.mark.parametrize(
    "bad", ["", "not base64!", "AAAA", base64.b64encode(b"x" * 31).decode()], ids=repr
)
def test_garbage_ciphertext_is_refused(bad: str) -> None:
    with pytest.raises(crypto.SimCryptoError):
        crypto.decrypt(KEY_A, APPID_A, bad)


@pytest.mark.parametrize("key", ["short", "A" * 44, "A" * 42 + "="])
def test_bad_encoding_aes_key_is_refused(key: str) -> None:
    with pytest.raises(crypto.SimCryptoError) as caught:
        crypto.aes_key(key)
    assert caught.value.code == crypto.ILLEGAL_AES_KEY


def test_lenient_last_key_character() -> None:
    # The 43rd character's low bits are dropped, as the reference decoder does.
    assert crypto.aes_key("A" * 42 + "B") == crypto.aes_key("A" * 43)


# -- properties -------------------------------------------------------------------------------

keys = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    min_size=43,
    max_size=43,
)
appids = st.from_regex(r"wx[0-9a-f]{16}", fullmatch=True)
tokens = st.from_regex(r"[A-Za-z0-9]{3,32}", fullmatch=True)


@given(key=keys, appid=appids, payload=st.binary(max_size=2000))
def test_decrypt_inverts_encrypt(key: str, appid: str, payload: bytes) -> None:
    assert crypto.decrypt(key, appid, crypto.encrypt(key, appid, payload)) == payload


@given(data=st.binary(max_size=200))
def test_pkcs7_round_trip_with_block_32(data: bytes) -> None:
    padded = crypto.pkcs7_pad(data)
    assert len(padded) % 32 == 0
    assert 1 <= len(padded) - len(data) <= 32
    assert crypto.pkcs7_unpad(padded) == data


@given(
    key=keys,
    appid=appids,
    token=tokens,
    payload=st.binary(min_size=1, max_size=500),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_a_flipped_byte_is_refused(
    key: str, appid: str, token: str, payload: bytes, position: int, flip: int
) -> None:
    encrypted = crypto.encrypt(key, appid, payload)
    sig = crypto.msg_signature(token, "1700000000", "123456", encrypted)
    raw = bytearray(encrypted.encode())
    raw[position % len(raw)] ^= flip
    tampered = raw.decode("latin-1")
    with pytest.raises(crypto.SimCryptoError):
        crypto.decrypt_signed(token, key, appid, tampered, sig, "1700000000", "123456")


@given(
    key=keys,
    appid=appids,
    token=tokens,
    xml=st.text(max_size=300).map(lambda s: f"<xml><Content>{len(s)}</Content></xml>".encode()),
    position=st.integers(min_value=0),
)
def test_envelope_round_trip_and_tamper(
    key: str, appid: str, token: str, xml: bytes, position: int
) -> None:
    envelope = crypto.build_envelope(token, key, appid, xml, "1700000000", "987654")
    assert crypto.parse_envelope(token, key, appid, envelope) == xml
    start = envelope.index(b"<Encrypt><![CDATA[") + len(b"<Encrypt><![CDATA[")
    end = envelope.index(b"]]></Encrypt>")
    index = start + position % (end - start)
    swapped = b"B" if envelope[index : index + 1] != b"B" else b"C"
    tampered = envelope[:index] + swapped + envelope[index + 1 :]
    with pytest.raises(crypto.SimCryptoError):
        crypto.parse_envelope(token, key, appid, tampered)

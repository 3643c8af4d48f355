"""The callback protocol layer: the sheet's vectors, every message and event, every refusal."""

from __future__ import annotations

import base64
import hashlib

import pytest
import xmltodict
from wechatpy.crypto import PrpCrypto, WeChatCrypto

from bankwx_cli.errors import BadCallbackError, BadSignatureError, ValidationError
from bankwx_cli.models.replies import Article, ImageReply, NewsReply, TextReply, TransferReply
from bankwx_cli.wechat.callback import (
    CallbackKeys,
    Inbound,
    open_callback,
    parse,
    render_reply,
    reply_success,
    seal_reply,
    verify_url,
)

# Protocol sheet §1.7, vectors A and F.
TOKEN = "pamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxb11529c136998cb6"
ORIGINAL_ID = "gh_7f083739789a"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
NOW = 1409304348
NONCE = "1320562132"
WINDOW = 300.0


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - the protocol


def signed_query(
    *,
    token: str = TOKEN,
    timestamp: int | str = NOW,
    nonce: str = NONCE,
    encrypt: str | None = None,
) -> dict[str, str]:
    ts = str(timestamp)
    query = {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": OPENID}
    if encrypt is not None:
        query |= {"encrypt_type": "aes", "msg_signature": sign(token, ts, nonce, encrypt)}
    return query


def seal(xml: str | bytes, *, aes_key: str = AES_KEY, appid: str = APPID) -> str:
    """WeChat's side of §1.5, by wechatpy."""
    encrypted: bytes = PrpCrypto(base64.b64decode(aes_key + "=")).encrypt(xml, appid)
    return encrypted.decode()


def envelope(encrypt: str, *, to: str = ORIGINAL_ID) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()


def keys_for(mode: str) -> CallbackKeys:
    return CallbackKeys(TOKEN, None if mode == "plain" else AES_KEY, APPID, ORIGINAL_ID, mode)


def deliver(keys: CallbackKeys, xml: str, *, timestamp: int = NOW, nonce: str = NONCE) -> Inbound:
    """POST `xml` as WeChat would in the keys' mode."""
    if keys.mode == "plain":
        query = signed_query(timestamp=timestamp, nonce=nonce)
        return open_callback(keys, query, xml.encode(), NOW, WINDOW)
    encrypt = seal(xml)
    query = signed_query(timestamp=timestamp, nonce=nonce, encrypt=encrypt)
    if keys.mode == "safe":
        body = envelope(encrypt)
    else:  # compatible: the plaintext fields and the Encrypt in one document
        body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode()
    return open_callback(keys, query, body, NOW, WINDOW)


def message(msg_type: str, rest: str = "", *, to: str = ORIGINAL_ID, openid: str = OPENID) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{NOW}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>{rest}</xml>"
    )


def event(name: str, rest: str = "") -> str:
    return message("event", f"<Event><![CDATA[{name}]]></Event>{rest}")


@pytest.fixture(params=["plain", "compatible", "safe"])
def keys(request: pytest.FixtureRequest) -> CallbackKeys:
    return keys_for(request.param)


@pytest.fixture
def safe() -> CallbackKeys:
    return keys_for("safe")


@pytest.fixture
def plain() -> CallbackKeys:
    return keys_for("plain")


# --- §1.7 vectors ------------------------------------------------------------------------------


def test_url_verification_worked_example() -> None:
    keys = CallbackKeys("AAAAA", None, "wx134c8103faa5a59e", "gh_97417a04a28d", "plain")
    query = {
        "signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
        "timestamp": "1714037059",
        "nonce": "486452656",
        "echostr": "1616140317555161061",
    }
    assert verify_url(keys, query) == "1616140317555161061"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "899cf89e464efb63f54ddac96b0a0a235f53aa79"},
        {"signature": ""},
        {"timestamp": "1714037060"},
        {"nonce": "486452657"},
    ],
)
def test_url_verification_bad_signature(change: dict[str, str]) -> None:
    keys = CallbackKeys("AAAAA", None, "wx134c8103faa5a59e", "gh_97417a04a28d", "plain")
    query = {
        "signature": "899cf89e464efb63f54ddac96b0a0a235f53aa78",
        "timestamp": "1714037059",
        "nonce": "486452656",
        "echostr": "42",
    } | change
    with pytest.raises(BadSignatureError):
        verify_url(keys, query)


def test_url_verification_without_signature_or_echostr() -> None:
    keys = keys_for("safe")
    with pytest.raises(BadSignatureError):
        verify_url(keys, {"timestamp": "1", "nonce": "2", "echostr": "3"})
    with pytest.raises(BadCallbackError):
        verify_url(keys, signed_query())


VECTOR_C_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PG"
    "HQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6"
    "tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp"
    "3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhv"
    "Ql+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
VECTOR_D_ENCRYPT = (
    "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS"
    "8jSI/WPeKB5VPr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDb"
    "OPaE7ukZBTV2YqyzH+UI2AK+J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It"
    "+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtkaKdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjic"
    "bP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GTF/XyE8yGzc4="
)
VECTOR_E_ENCRYPT = (
    "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1v"
    "r7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBq"
    "CzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTf"
    "yeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ"
    "15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXb"
    "sTFHTYe0Mg=="
)
VECTOR_F_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv27AKIBFtmZ9JQbUxl7mTFlM30NheKDRSmzml3///nmhaSs9xUACSIMHn2sNUrkj3j+HVrqBX"
    "fs8nIMswJFABgngUGbBiYfjjhO/r1fqDmmpmV1KE3PrzEd2OMju/XPP46n+xhuXx5fSIbBABuGUk5G05+xJlp8LRc5Cp"
    "TdpzFWyJQwGqFlfozlNqhZFTZH+BKi9Vfl6zOO9eF38NjiujPW7bus9Jha7ree8VnXrRu7j4sWLVZ0lreNUzzumBMz8z"
    "yid11tuaIfblwfKJvUeh2HyJzdkXYkNxcZ9IB6c2ej5r0AnG0PnKJ0+dkE5Rm1n0buG6WwitPPsUSXEAucvkACIxr79L"
    "q5+RBvM5Zx8P+Rgk1/fBK6OkpflD67Qy1cVkucPqqeRxecOBqiM3JhmUqD0="
)
VECTOR_F_QUERY = {
    "signature": "76480565cbe296026c53aaacd1ad523a1ddba24f",
    "timestamp": "1409304348",
    "nonce": "xxxxxx",
    "openid": OPENID,
    "encrypt_type": "aes",
    "msg_signature": "7126671f4a3c7c37fba63dec1889334db5f09f81",
}
VECTOR_F_REPLY = (
    "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hi]]></Content>\n"
    "<FromUserName><![CDATA[gh_7f083739789a]]></FromUserName>\n"
    "<ToUserName><![CDATA[oia2TjjewbmiOUlr6X-1crbLOvLw]]></ToUserName>\n"
    "<CreateTime>1409304349</CreateTime>\n</xml>"
)


def test_vector_c_compatible_mode() -> None:
    keys = CallbackKeys("spamtest", AES_KEY, "wx2c2769f8efd9abc2", "gh_10f6c3c3ac5a", "compatible")
    body = (
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
        "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId>"
        f"<Encrypt><![CDATA[{VECTOR_C_ENCRYPT}]]></Encrypt></xml>"
    ).encode()
    query = {
        "signature": sign("spamtest", "1409735669", "1320562132"),
        "timestamp": "1409735669",
        "nonce": "1320562132",
        "encrypt_type": "aes",
        "msg_signature": "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    }
    inbound = open_callback(keys, query, body, 1409735669, WINDOW)
    assert inbound == Inbound(
        msg_type="text",
        event="",
        openid="oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        to="gh_10f6c3c3ac5a",
        create_time=1409735668,
        msg_id="6054768590064713728",
        content="abcdteT",
        event_key="",
        scene="",
        fields={
            "ToUserName": "gh_10f6c3c3ac5a",
            "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
            "CreateTime": "1409735668",
            "MsgType": "text",
            "Content": "abcdteT",
            "MsgId": "6054768590064713728",
        },
        encrypted=True,
    )
    assert inbound.dedup_key() == "msg:6054768590064713728"


def test_vector_d_safe_mode() -> None:
    keys = CallbackKeys("spamtest", AES_KEY, "wx2c2769f8efd9abc2", "gh_10f6c3c3ac5a", "safe")
    query = {
        "signature": sign("spamtest", "1410349438", "298025754"),
        "timestamp": "1410349438",
        "nonce": "298025754",
        "encrypt_type": "aes",
        "msg_signature": "003fee52ecc56afb46c00b5c7721be87860ce785",
    }
    body = envelope(VECTOR_D_ENCRYPT, to="gh_10f6c3c3ac5a")
    inbound = open_callback(keys, query, body, 1410349438, WINDOW)
    assert (inbound.msg_type, inbound.content, inbound.msg_id) == (
        "text",
        "abcdteT",
        "6057404712141979648",
    )
    assert (inbound.openid, inbound.create_time, inbound.encrypted) == (
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        1410349438,
        True,
    )


def test_vector_e_unknown_event_keeps_its_fields() -> None:
    keys = CallbackKeys("AAAAA", "A" * 43, "wx134c8103faa5a59e", "gh_97417a04a28d", "safe")
    query = {
        "signature": sign("AAAAA", "1715943329", "1590219412"),
        "timestamp": "1715943329",
        "nonce": "1590219412",
        "msg_signature": "6c12a4205838198b8fa631b3220723bb07f1015c",
    }
    inbound = open_callback(keys, query, envelope(VECTOR_E_ENCRYPT), 1715943329, WINDOW)
    assert (inbound.msg_type, inbound.event, inbound.openid) == (
        "event",
        "debug_demo",
        "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
    )
    assert inbound.fields["debug_str"] == "hello world"


def test_vector_f_safe_round_trip(safe: CallbackKeys) -> None:
    inbound = open_callback(safe, VECTOR_F_QUERY, envelope(VECTOR_F_ENCRYPT), NOW, WINDOW)
    assert (inbound.openid, inbound.content, inbound.msg_id) == (
        OPENID,
        "hello",
        "1234567890123456",
    )

    body = render_reply(
        safe, inbound, TextReply("hi"), encrypt=True, timestamp=1409304349, nonce="xxxxxx"
    )
    reply = xmltodict.parse(body)["xml"]
    assert set(reply) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert (reply["TimeStamp"], reply["Nonce"]) == ("1409304349", "xxxxxx")
    expected_signature = sign(TOKEN, "1409304349", "xxxxxx", reply["Encrypt"])
    assert reply["MsgSignature"] == expected_signature
    wechat = WeChatCrypto(TOKEN, AES_KEY, APPID)
    inner = wechat.decrypt_message(body, expected_signature, "1409304349", "xxxxxx")
    assert inner == VECTOR_F_REPLY


def test_vector_f_query_signature_is_checked(safe: CallbackKeys) -> None:
    query = VECTOR_F_QUERY | {"signature": "0" * 40}
    with pytest.raises(BadSignatureError, match="signature"):
        open_callback(safe, query, envelope(VECTOR_F_ENCRYPT), NOW, WINDOW)


# --- §2.1 messages and §2.2 events -------------------------------------------------------------

MASS_SEND = (
    "<MsgID>1000001625</MsgID><Status><![CDATA[err(30003)]]></Status><TotalCount>0</TotalCount>"
    "<FilterCount>0</FilterCount><SentCount>0</SentCount><ErrorCount>0</ErrorCount>"
    "<CopyrightCheckResult><Count>2</Count><ResultList><item><ArticleIdx>1</ArticleIdx>"
    "<UserDeclareState>0</UserDeclareState><AuditState>2</AuditState>"
    "<OriginalArticleUrl><![CDATA[Url_1]]></OriginalArticleUrl>"
    "<OriginalArticleType>1</OriginalArticleType><CanReprint>1</CanReprint>"
    "<NeedReplaceContent>1</NeedReplaceContent><NeedShowReprintSource>1</NeedShowReprintSource>"
    "</item></ResultList><CheckState>2</CheckState></CopyrightCheckResult>"
    "<ArticleUrlResult><Count>1</Count><ResultList><item><ArticleIdx>1</ArticleIdx>"
    "<ArticleUrl><![CDATA[Url]]></ArticleUrl></item></ResultList></ArticleUrlResult>"
)
SCAN_CODE = (
    "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
    "<ScanResult><![CDATA[2]]></ScanResult></ScanCodeInfo>"
)
ONE_PIC = (
    "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item>"
    "<PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList>"
    "</SendPicsInfo>"
)
TWO_PICS = (
    "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>2</Count><PicList>"
    "<item><PicMd5Sum><![CDATA[aaa]]></PicMd5Sum></item>"
    "<item><PicMd5Sum><![CDATA[bbb]]></PicMd5Sum></item></PicList></SendPicsInfo>"
)
LOCATION_SELECT = (
    "<EventKey><![CDATA[6]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X>"
    "<Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale>"
    "<Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label><Poiname><![CDATA[]]></Poiname>"
    "</SendLocationInfo>"
)

# (id, xml, expected attributes, expected fields (a subset))
CASES: list[tuple[str, str, dict[str, object], dict[str, str]]] = [
    (
        "text",
        message("text", "<Content><![CDATA[余额 查询]]></Content><MsgId>1234567890123456</MsgId>"),
        {"msg_type": "text", "event": "", "msg_id": "1234567890123456", "content": "余额 查询"},
        {"Content": "余额 查询", "MsgType": "text", "CreateTime": str(NOW)},
    ),
    (
        "text-from-msgmenu",
        message("text", "<Content>满意</Content><MsgId>11</MsgId><bizmsgmenuid>101</bizmsgmenuid>"),
        {"content": "满意", "msg_id": "11"},
        {"bizmsgmenuid": "101"},
    ),
    (
        "image",
        message(
            "image",
            "<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl>"
            "<MediaId><![CDATA[media_1]]></MediaId><MsgId>2</MsgId>",
        ),
        {"msg_type": "image", "msg_id": "2", "content": "", "event_key": ""},
        {"PicUrl": "http://mmbiz.qpic.cn/x", "MediaId": "media_1"},
    ),
    (
        "voice",
        message(
            "voice",
            "<MediaId>m1</MediaId><Format><![CDATA[amr]]></Format><MediaId16K>m2</MediaId16K>"
            "<Recognition><![CDATA[查余额]]></Recognition><MsgId>3</MsgId>",
        ),
        {"msg_type": "voice", "msg_id": "3", "content": ""},
        {"MediaId": "m1", "Format": "amr", "MediaId16K": "m2", "Recognition": "查余额"},
    ),
    (
        "voice-empty-recognition",
        message(
            "voice", "<MediaId>m1</MediaId><Recognition><![CDATA[]]></Recognition><MsgId>4</MsgId>"
        ),
        {"msg_type": "voice"},
        {"Recognition": ""},
    ),
    (
        "video",
        message("video", "<MediaId>v</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>5</MsgId>"),
        {"msg_type": "video", "msg_id": "5"},
        {"MediaId": "v", "ThumbMediaId": "t"},
    ),
    (
        "shortvideo",
        message("shortvideo", "<MediaId>v</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>6</MsgId>"),
        {"msg_type": "shortvideo", "msg_id": "6"},
        {"MediaId": "v", "ThumbMediaId": "t"},
    ),
    (
        "location",
        message(
            "location",
            "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>"
            "<Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>7</MsgId>",
        ),
        {"msg_type": "location", "msg_id": "7"},
        {"Location_X": "23.134521", "Location_Y": "113.358803", "Scale": "20", "Label": "位置信息"},
    ),
    (
        "link",
        message(
            "link",
            "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[desc]]></Description>"
            "<Url><![CDATA[https://mp.weixin.qq.com/]]></Url><MsgId>8</MsgId>",
        ),
        {"msg_type": "link", "msg_id": "8"},
        {"Title": "公众平台官网链接", "Description": "desc", "Url": "https://mp.weixin.qq.com/"},
    ),
    (
        "miniprogrampage",
        message(
            "miniprogrampage",
            "<AppId>wxapp</AppId><Title>t</Title><PagePath>pages/index</PagePath>"
            "<ThumbUrl>http://x/t.png</ThumbUrl><ThumbMediaId>tm</ThumbMediaId><MsgId>9</MsgId>",
        ),
        {"msg_type": "miniprogrampage", "msg_id": "9"},
        {"AppId": "wxapp", "PagePath": "pages/index", "ThumbMediaId": "tm"},
    ),
    (
        "unknown-message-type",
        message("NewKind", "<Foo>bar</Foo><MsgId>10</MsgId>"),
        {"msg_type": "newkind", "event": "", "msg_id": "10"},
        {"Foo": "bar", "MsgType": "NewKind"},
    ),
    (
        "subscribe",
        event("subscribe", "<EventKey><![CDATA[]]></EventKey>"),
        {"msg_type": "event", "event": "subscribe", "event_key": "", "scene": "", "msg_id": ""},
        {"Event": "subscribe", "EventKey": ""},
    ),
    (
        "subscribe-without-eventkey",
        event("subscribe"),
        {"event": "subscribe", "event_key": "", "scene": "", "content": ""},
        {"Event": "subscribe"},
    ),
    (
        "subscribe-qrscene",
        event(
            "subscribe", "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket>TICKET</Ticket>"
        ),
        {"event": "subscribe", "event_key": "qrscene_123123", "scene": "123123"},
        {"Event": "subscribe", "EventKey": "qrscene_123123", "Ticket": "TICKET"},
    ),
    (
        "subscribe-from-product-page",
        event("subscribe", "<EventKey><![CDATA[scanbarcode|ean13|6901234567892]]></EventKey>"),
        {"event": "subscribe", "event_key": "scanbarcode|ean13|6901234567892", "scene": ""},
        {"Event": "subscribe", "EventKey": "scanbarcode|ean13|6901234567892"},
    ),
    ("unsubscribe", event("unsubscribe"), {"event": "unsubscribe", "content": ""}, {}),
    (
        "scan",
        event("SCAN", "<EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket>TICKET</Ticket>"),
        {"event": "scan", "event_key": "SCENE_VALUE", "scene": "SCENE_VALUE"},
        {"Event": "SCAN", "Ticket": "TICKET"},
    ),
    (
        "location-event",
        event(
            "LOCATION",
            "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude>"
            "<Precision>119.385040</Precision>",
        ),
        {"event": "location", "event_key": ""},
        {"Latitude": "23.137466", "Longitude": "113.352425", "Precision": "119.385040"},
    ),
    (
        "click",
        event("CLICK", "<EventKey><![CDATA[BALANCE]]></EventKey>"),
        {"event": "click", "event_key": "BALANCE", "content": "BALANCE", "msg_id": ""},
        {"EventKey": "BALANCE"},
    ),
    (
        "view",
        event("VIEW", "<EventKey><![CDATA[https://bank.example/]]></EventKey><MenuId>7</MenuId>"),
        {"event": "view", "event_key": "https://bank.example/"},
        {"MenuId": "7"},
    ),
    (
        "scancode_push",
        event("scancode_push", SCAN_CODE),
        {"event": "scancode_push", "event_key": "6"},
        {"ScanCodeInfo.ScanType": "qrcode", "ScanCodeInfo.ScanResult": "2"},
    ),
    (
        "scancode_waitmsg",
        event("scancode_waitmsg", SCAN_CODE),
        {"event": "scancode_waitmsg", "event_key": "6"},
        {"ScanCodeInfo.ScanType": "qrcode", "ScanCodeInfo.ScanResult": "2"},
    ),
    (
        "pic_sysphoto",
        event("pic_sysphoto", ONE_PIC),
        {"event": "pic_sysphoto", "event_key": "6"},
        {
            "SendPicsInfo.Count": "1",
            "SendPicsInfo.PicList.item.PicMd5Sum": "1b5f7c23b5bf75682a53e7b6d163e185",
        },
    ),
    (
        "pic_photo_or_album",
        event("pic_photo_or_album", TWO_PICS),
        {"event": "pic_photo_or_album"},
        {
            "SendPicsInfo.Count": "2",
            "SendPicsInfo.PicList.item.0.PicMd5Sum": "aaa",
            "SendPicsInfo.PicList.item.1.PicMd5Sum": "bbb",
        },
    ),
    (
        "pic_weixin",
        event("pic_weixin", ONE_PIC),
        {"event": "pic_weixin"},
        {"SendPicsInfo.Count": "1"},
    ),
    (
        "location_select",
        event("location_select", LOCATION_SELECT),
        {"event": "location_select", "event_key": "6"},
        {
            "SendLocationInfo.Location_X": "23",
            "SendLocationInfo.Location_Y": "113",
            "SendLocationInfo.Scale": "15",
            "SendLocationInfo.Label": "广州市海珠区客村艺苑路 106号",
            "SendLocationInfo.Poiname": "",
        },
    ),
    (
        "view_miniprogram",
        event("view_miniprogram", "<EventKey>pages/index</EventKey><MenuId>3</MenuId>"),
        {"event": "view_miniprogram", "event_key": "pages/index"},
        {"MenuId": "3"},
    ),
    (
        "templatesendjobfinish",
        event(
            "TEMPLATESENDJOBFINISH",
            "<MsgID>3487542469355618313</MsgID><Status><![CDATA[failed:user block]]></Status>",
        ),
        {"event": "templatesendjobfinish", "msg_id": "3487542469355618313", "event_key": ""},
        {"Status": "failed:user block", "MsgID": "3487542469355618313"},
    ),
    (
        "masssendjobfinish",
        event("MASSSENDJOBFINISH", MASS_SEND),
        {"event": "masssendjobfinish", "msg_id": "1000001625"},
        {
            "Status": "err(30003)",
            "TotalCount": "0",
            "SentCount": "0",
            "CopyrightCheckResult.Count": "2",
            "CopyrightCheckResult.CheckState": "2",
            "CopyrightCheckResult.ResultList.item.ArticleIdx": "1",
            "ArticleUrlResult.ResultList.item.ArticleUrl": "Url",
        },
    ),
    (
        "kf_create_session",
        event("kf_create_session", "<KfAccount><![CDATA[test1@test]]></KfAccount>"),
        {"event": "kf_create_session"},
        {"KfAccount": "test1@test"},
    ),
    (
        "kf_close_session",
        event("kf_close_session", "<KfAccount><![CDATA[test1@test]]></KfAccount>"),
        {"event": "kf_close_session"},
        {"KfAccount": "test1@test"},
    ),
    (
        "kf_switch_session",
        event(
            "kf_switch_session",
            "<FromKfAccount><![CDATA[test1@test]]></FromKfAccount>"
            "<ToKfAccount><![CDATA[test2@test]]></ToKfAccount>",
        ),
        {"event": "kf_switch_session"},
        {"FromKfAccount": "test1@test", "ToKfAccount": "test2@test"},
    ),
    (
        "publishjobfinish",
        event(
            "PUBLISHJOBFINISH",
            "<PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status>"
            "<article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy]]></article_id>"
            "</PublishEventInfo>",
        ),
        {"event": "publishjobfinish", "msg_id": ""},
        {"PublishEventInfo.publish_id": "2247503051", "PublishEventInfo.publish_status": "0"},
    ),
]


@pytest.mark.parametrize(
    ("xml", "expected", "expected_fields"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_message_and_event(
    keys: CallbackKeys, xml: str, expected: dict[str, object], expected_fields: dict[str, str]
) -> None:
    inbound = deliver(keys, xml)
    assert (inbound.openid, inbound.to, inbound.create_time) == (OPENID, ORIGINAL_ID, NOW)
    assert inbound.encrypted is (keys.mode != "plain")
    assert {name: getattr(inbound, name) for name in expected} == expected
    assert {name: inbound.fields.get(name) for name in expected_fields} == expected_fields
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in inbound.fields.items())


def test_event_content_is_the_event_key(plain: CallbackKeys) -> None:
    inbound = deliver(plain, event("CLICK", "<EventKey>MENU_RATES</EventKey>"))
    assert inbound.content == inbound.event_key == "MENU_RATES"


def test_text_message_keeps_content_exactly(plain: CallbackKeys) -> None:
    content = "第一行\n  <b>&amp; 第二行 ]] > 😀"
    xml = message("text", f"<Content><![CDATA[{content}]]></Content><MsgId>1</MsgId>")
    assert deliver(plain, xml).content == content


def test_escaped_text_content(plain: CallbackKeys) -> None:
    xml = message("text", "<Content>a &lt;b&gt; &amp; &#20313;</Content><MsgId>1</MsgId>")
    assert deliver(plain, xml).content == "a <b> & 余"


def test_inbound_is_plain_values(plain: CallbackKeys) -> None:
    inbound = deliver(plain, CASES[0][1])
    assert type(inbound.create_time) is int
    assert type(inbound.fields) is dict
    assert parse(CASES[0][1].encode()) == inbound


# --- §2.3 de-duplication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "key"),
    [
        (CASES[0][1], "msg:1234567890123456"),
        (message("image", "<MediaId>m</MediaId><MsgId>77</MsgId>"), "msg:77"),
        (
            event("TEMPLATESENDJOBFINISH", "<MsgID>348754</MsgID><Status>success</Status>"),
            "event:templatesendjobfinish:348754",
        ),
        (event("MASSSENDJOBFINISH", MASS_SEND), "event:masssendjobfinish:1000001625"),
        (event("CLICK", "<EventKey>BALANCE</EventKey>"), f"event:{NOW}:{OPENID}:click:BALANCE"),
        (
            event("subscribe", "<EventKey>qrscene_123123</EventKey>"),
            f"event:{NOW}:{OPENID}:subscribe:qrscene_123123",
        ),
        (event("unsubscribe"), f"event:{NOW}:{OPENID}:unsubscribe:"),
        (message("text", "<Content>no id</Content>"), f"msg:{OPENID}:{NOW}:text"),
    ],
)
def test_dedup_key(keys: CallbackKeys, xml: str, key: str) -> None:
    assert deliver(keys, xml).dedup_key() == key


def test_retries_share_the_dedup_key(safe: CallbackKeys) -> None:
    """A retry carries the same body under a new timestamp, nonce and signature."""
    xml = event("CLICK", "<EventKey>BALANCE</EventKey>")
    first = deliver(safe, xml, timestamp=NOW, nonce="111")
    retry = deliver(safe, xml, timestamp=NOW + 5, nonce="222")
    assert first.dedup_key() == retry.dedup_key()


def test_two_events_in_one_second_differ(plain: CallbackKeys) -> None:
    click = deliver(plain, event("CLICK", "<EventKey>A</EventKey>"))
    other = deliver(plain, event("CLICK", "<EventKey>B</EventKey>"))
    view = deliver(plain, event("VIEW", "<EventKey>A</EventKey>"))
    assert len({click.dedup_key(), other.dedup_key(), view.dedup_key()}) == 3


# --- Refusals: 403 -----------------------------------------------------------------------------

TEXT = CASES[0][1]


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 40},
        {"signature": ""},
        {"signature": sign("othertoken", str(NOW), NONCE)},
        {"signature": sign(TOKEN, str(NOW), NONCE).upper()},
        {"nonce": "999"},
        {"timestamp": str(NOW + 1)},
        {"signature": "签名"},
    ],
)
def test_bad_signature(keys: CallbackKeys, change: dict[str, str]) -> None:
    encrypt = seal(TEXT)
    query = signed_query(encrypt=encrypt) | change
    with pytest.raises(BadSignatureError):
        open_callback(keys, query, envelope(encrypt), NOW, WINDOW)


def test_missing_signature(keys: CallbackKeys) -> None:
    query = signed_query()
    del query["signature"]
    with pytest.raises(BadSignatureError):
        open_callback(keys, query, TEXT.encode(), NOW, WINDOW)


@pytest.mark.parametrize("skew", [WINDOW + 1, -WINDOW - 1, 86400, -86400])
def test_timestamp_outside_the_window(keys: CallbackKeys, skew: float) -> None:
    with pytest.raises(BadSignatureError, match="replay window"):
        deliver(keys, TEXT, timestamp=int(NOW + skew))


@pytest.mark.parametrize("skew", [WINDOW, -WINDOW, 0])
def test_timestamp_inside_the_window(keys: CallbackKeys, skew: float) -> None:
    assert deliver(keys, TEXT, timestamp=int(NOW + skew)).content == "余额 查询"


@pytest.mark.parametrize(
    "timestamp", ["", "abc", "-1", "1e9", " 1409304348", "１４０９３０４３４８"]
)
def test_signed_but_malformed_timestamp(plain: CallbackKeys, timestamp: str) -> None:
    with pytest.raises(BadSignatureError):
        open_callback(plain, signed_query(timestamp=timestamp), TEXT.encode(), NOW, WINDOW)


@pytest.mark.parametrize("nonce", ["", "12 34", "1]]><x>", "n" * 65])
def test_signed_but_malformed_nonce(plain: CallbackKeys, nonce: str) -> None:
    with pytest.raises(BadSignatureError):
        open_callback(plain, signed_query(nonce=nonce), TEXT.encode(), NOW, WINDOW)


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_bad_msg_signature(mode: str) -> None:
    keys = keys_for(mode)
    encrypt = seal(TEXT)
    for msg_signature in ("0" * 40, "", sign(TOKEN, str(NOW), NONCE)):
        query = signed_query(encrypt=encrypt) | {"msg_signature": msg_signature}
        with pytest.raises(BadSignatureError, match="msg_signature"):
            open_callback(keys, query, envelope(encrypt), NOW, WINDOW)
    query = signed_query(encrypt=encrypt)
    del query["msg_signature"]
    with pytest.raises(BadSignatureError, match="msg_signature"):
        open_callback(keys, query, envelope(encrypt), NOW, WINDOW)


@pytest.mark.parametrize("position", [0, 1, 100, 300, -5, -3])
def test_flipped_byte_in_encrypt(safe: CallbackKeys, position: int) -> None:
    encrypt = VECTOR_F_ENCRYPT
    at = position % len(encrypt)
    flipped = "B" if encrypt[at] != "B" else "C"
    tampered = encrypt[:at] + flipped + encrypt[at + 1 :]
    with pytest.raises(BadSignatureError, match="msg_signature"):
        open_callback(safe, VECTOR_F_QUERY, envelope(tampered), NOW, WINDOW)


def test_tampered_ciphertext_under_a_fresh_msg_signature(safe: CallbackKeys) -> None:
    """Someone with the token but not the key: the ciphertext must still not pass."""
    raw = bytearray(base64.b64decode(VECTOR_F_ENCRYPT))
    raw[-20] ^= 0x01  # in the appid/padding block
    tampered = base64.b64encode(bytes(raw)).decode()
    query = signed_query(encrypt=tampered)
    with pytest.raises(BadSignatureError, match="decrypt"):
        open_callback(safe, query, envelope(tampered), NOW, WINDOW)


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_wrong_appid(mode: str) -> None:
    encrypt = seal(TEXT, appid="wx0000000000000000")
    with pytest.raises(BadSignatureError, match="decrypt"):
        open_callback(keys_for(mode), signed_query(encrypt=encrypt), envelope(encrypt), NOW, WINDOW)


def test_wrong_aes_key(safe: CallbackKeys) -> None:
    encrypt = seal(TEXT, aes_key="A" * 43)
    with pytest.raises(BadSignatureError, match="decrypt"):
        open_callback(safe, signed_query(encrypt=encrypt), envelope(encrypt), NOW, WINDOW)


def test_not_addressed_to_this_account(keys: CallbackKeys) -> None:
    with pytest.raises(BadSignatureError, match="not addressed"):
        deliver(
            keys, message("text", "<Content>hi</Content><MsgId>1</MsgId>", to="gh_000000000000")
        )


def test_safe_mode_trusts_only_the_encrypted_addressee(safe: CallbackKeys) -> None:
    """The envelope's own ToUserName carries no signature: only the encrypted one counts."""
    encrypt = seal(TEXT)
    inbound = open_callback(
        safe, signed_query(encrypt=encrypt), envelope(encrypt, to="gh_other"), NOW, WINDOW
    )
    assert inbound.to == ORIGINAL_ID
    wrong = seal(message("text", "<Content>hi</Content>", to="gh_other"))
    with pytest.raises(BadSignatureError, match="not addressed"):
        open_callback(safe, signed_query(encrypt=wrong), envelope(wrong), NOW, WINDOW)


def test_compatible_mode_routes_on_the_decrypted_message_only() -> None:
    keys = keys_for("compatible")
    real = message("text", "<Content><![CDATA[hello]]></Content><MsgId>1</MsgId>")
    encrypt = seal(real)
    forged = message(
        "event", "<Event>CLICK</Event><EventKey>TRANSFER_ALL</EventKey>", openid="oAttacker"
    )
    body = forged.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>").encode()
    inbound = open_callback(keys, signed_query(encrypt=encrypt), body, NOW, WINDOW)
    assert (inbound.msg_type, inbound.content, inbound.openid) == ("text", "hello", OPENID)
    assert "EventKey" not in inbound.fields


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_encrypted_modes_refuse_a_plain_body(mode: str) -> None:
    with pytest.raises(BadCallbackError, match="envelope"):
        open_callback(keys_for(mode), signed_query(), TEXT.encode(), NOW, WINDOW)


def test_plain_mode_refuses_an_encrypted_body(plain: CallbackKeys) -> None:
    encrypt = seal(TEXT)
    with pytest.raises(BadCallbackError):
        open_callback(plain, signed_query(encrypt=encrypt), envelope(encrypt), NOW, WINDOW)


# --- §3 replies --------------------------------------------------------------------------------


def inbound_text(keys: CallbackKeys) -> Inbound:
    return deliver(keys, TEXT)


def plain_reply(body: bytes) -> dict[str, object]:
    """The reply's fields, whitespace kept (the newlines between elements dropped)."""
    parsed: dict[str, object] = xmltodict.parse(body, strip_whitespace=False)["xml"]
    del parsed["#text"]
    return parsed


def test_render_text(plain: CallbackKeys) -> None:
    body = render_reply(
        plain, inbound_text(plain), TextReply("您好\n余额"), encrypt=False, timestamp=7, nonce="1"
    )
    assert plain_reply(body) == {
        "MsgType": "text",
        "Content": "您好\n余额",
        "FromUserName": ORIGINAL_ID,
        "ToUserName": OPENID,
        "CreateTime": "7",
    }


def test_render_image(plain: CallbackKeys) -> None:
    body = render_reply(
        plain, inbound_text(plain), ImageReply("MEDIA_1"), encrypt=False, timestamp=7, nonce="1"
    )
    reply = xmltodict.parse(body)["xml"]
    assert (reply["MsgType"], reply["Image"], reply["ToUserName"]) == (
        "image",
        {"MediaId": "MEDIA_1"},
        OPENID,
    )


def test_render_news_with_one_article(plain: CallbackKeys) -> None:
    article = Article(
        "信用卡账单", "本期账单已出", "https://bank.example/bill?a=1&b=2", "https://x/p.jpg"
    )
    body = render_reply(
        plain, inbound_text(plain), NewsReply(article), encrypt=False, timestamp=7, nonce="1"
    )
    reply = xmltodict.parse(body)["xml"]
    assert (reply["MsgType"], reply["ArticleCount"]) == ("news", "1")
    assert reply["Articles"]["item"] == {
        "Title": "信用卡账单",
        "Description": "本期账单已出",
        "PicUrl": "https://x/p.jpg",
        "Url": "https://bank.example/bill?a=1&b=2",
    }


def test_render_transfer(plain: CallbackKeys) -> None:
    body = render_reply(
        plain, inbound_text(plain), TransferReply(), encrypt=False, timestamp=7, nonce="1"
    )
    reply = xmltodict.parse(body)["xml"]
    assert reply["MsgType"] == "transfer_customer_service"
    assert "TransInfo" not in reply
    assert (reply["FromUserName"], reply["ToUserName"], reply["CreateTime"]) == (
        ORIGINAL_ID,
        OPENID,
        "7",
    )


def test_render_transfer_to_an_agent(plain: CallbackKeys) -> None:
    body = render_reply(
        plain,
        inbound_text(plain),
        TransferReply("test1@test"),
        encrypt=False,
        timestamp=7,
        nonce="1",
    )
    reply = xmltodict.parse(body)["xml"]
    assert reply["MsgType"] == "transfer_customer_service"
    assert reply["TransInfo"] == {"KfAccount": "test1@test"}
    assert b"<TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo>" in body


def test_reply_text_cannot_break_out_of_cdata(plain: CallbackKeys) -> None:
    content = "a]]><MsgType><![CDATA[image]]></MsgType><x>]]>"
    body = render_reply(
        plain, inbound_text(plain), TextReply(content), encrypt=False, timestamp=7, nonce="1"
    )
    reply = plain_reply(body)
    assert reply["MsgType"] == "text"
    assert reply["Content"] == content


def test_reply_drops_characters_xml_cannot_carry(plain: CallbackKeys) -> None:
    body = render_reply(
        plain,
        inbound_text(plain),
        TextReply("a\x00b\x0bc\ud800d\ufffee"),
        encrypt=False,
        timestamp=7,
        nonce="1",
    )
    assert plain_reply(body)["Content"] == "abcde"


@pytest.mark.parametrize(
    "reply",
    [
        TextReply("hi"),
        ImageReply("MEDIA_1"),
        NewsReply(Article("t", "d", "https://u", "https://p")),
        TransferReply(),
        TransferReply("test1@test"),
    ],
    ids=["text", "image", "news", "transfer", "transfer-to-agent"],
)
@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_encrypted_reply_holds_the_plain_reply(
    mode: str, reply: TextReply | ImageReply | NewsReply | TransferReply
) -> None:
    keys = keys_for(mode)
    inbound = inbound_text(keys)
    clear = render_reply(keys, inbound, reply, encrypt=False, timestamp=NOW, nonce="abc123")
    body = render_reply(keys, inbound, reply, encrypt=True, timestamp=NOW, nonce="abc123")
    outer = xmltodict.parse(body)["xml"]
    assert (outer["TimeStamp"], outer["Nonce"]) == (str(NOW), "abc123")
    inner = WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(
        body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    assert inner.encode() == clear


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_seal_a_kept_reply(mode: str) -> None:
    """The engine keeps the plain reply for retries and seals it for each response."""
    keys = CallbackKeys(TOKEN, AES_KEY, APPID, ORIGINAL_ID, mode)
    kept = render_reply(
        keys, inbound_text(keys), TextReply("余额"), encrypt=False, timestamp=NOW, nonce="0"
    )
    body = seal_reply(keys, kept, timestamp=NOW + 3, nonce="987")
    outer = xmltodict.parse(body)["xml"]
    assert (outer["TimeStamp"], outer["Nonce"]) == (str(NOW + 3), "987")
    inner = WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(
        body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    assert inner.encode() == kept


def test_seal_needs_a_key_and_a_clean_nonce(plain: CallbackKeys, safe: CallbackKeys) -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        seal_reply(plain, b"<xml></xml>", timestamp=1, nonce="1")
    with pytest.raises(ValueError, match="nonce"):
        seal_reply(safe, b"<xml></xml>", timestamp=1, nonce="]]>")


def test_encrypted_replies_differ_each_time(safe: CallbackKeys) -> None:
    inbound = inbound_text(safe)
    bodies = {
        render_reply(safe, inbound, TextReply("hi"), encrypt=True, timestamp=NOW, nonce="1")
        for _ in range(5)
    }
    assert len(bodies) == 5


def test_encrypting_needs_a_key(plain: CallbackKeys) -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        render_reply(
            plain, inbound_text(plain), TextReply("hi"), encrypt=True, timestamp=1, nonce="1"
        )


@pytest.mark.parametrize("nonce", ["", "a b", "1]]><x>", "x" * 65])
def test_encrypted_reply_refuses_a_malformed_nonce(safe: CallbackKeys, nonce: str) -> None:
    with pytest.raises(ValueError, match="nonce"):
        render_reply(
            safe, inbound_text(safe), TextReply("hi"), encrypt=True, timestamp=1, nonce=nonce
        )


def test_reply_success() -> None:
    assert reply_success() == b"success"


# --- Keys --------------------------------------------------------------------------------------


def test_keys_repr_hides_the_secrets() -> None:
    text = repr(keys_for("safe"))
    assert TOKEN not in text
    assert AES_KEY not in text
    assert APPID in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((TOKEN, AES_KEY, APPID, ORIGINAL_ID, "encrypted"), "mode"),
        ((TOKEN, None, APPID, ORIGINAL_ID, "safe"), "EncodingAESKey"),
        ((TOKEN, None, APPID, ORIGINAL_ID, "compatible"), "EncodingAESKey"),
        ((TOKEN, AES_KEY[:-1], APPID, ORIGINAL_ID, "safe"), "EncodingAESKey"),
        ((TOKEN, AES_KEY[:-1] + "=", APPID, ORIGINAL_ID, "safe"), "EncodingAESKey"),
        (("to", AES_KEY, APPID, ORIGINAL_ID, "safe"), "Token"),
        (("tok en", AES_KEY, APPID, ORIGINAL_ID, "safe"), "Token"),
        ((TOKEN, AES_KEY, "", ORIGINAL_ID, "safe"), "appid"),
        ((TOKEN, AES_KEY, APPID, "gh_ x", "safe"), "original id"),
    ],
)
def test_keys_are_validated(args: tuple[str, str | None, str, str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CallbackKeys(*args)


def test_plain_keys_may_carry_a_key() -> None:
    keys = CallbackKeys(TOKEN, AES_KEY, APPID, ORIGINAL_ID, "plain")
    inbound = deliver(keys, TEXT)
    assert inbound.encrypted is False
    body = render_reply(keys, inbound, TextReply("hi"), encrypt=True, timestamp=1, nonce="1")
    assert b"<Encrypt>" in body


def test_encrypted_body_for_a_plain_account_says_so(plain: CallbackKeys) -> None:
    """WeChat set to safe mode while the store says plain: the reason names the mismatch and
    the fix, not the parser's KeyError."""
    encrypt = seal(message("text", "<Content>hi</Content><MsgId>1</MsgId>"))
    query = signed_query(encrypt=encrypt)
    with pytest.raises(BadCallbackError) as refused:
        open_callback(plain, query, envelope(encrypt), NOW, WINDOW)
    text = str(refused.value)
    assert "encrypted" in text and "plain mode" in text and "--mode safe" in text
    assert "KeyError" not in text

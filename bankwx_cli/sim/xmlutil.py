"""WeChat-style XML: rendering pushes (CDATA strings, bare numbers) and parsing replies safely."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

MAX_XML_BYTES = 1_000_000
_DECLARATION_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

# A field value: text (CDATA), a number or Bare text (bare), a nested element, or repeated <item>s.
XmlValue = str | int | float | Mapping[str, "XmlValue"] | Sequence[Mapping[str, "XmlValue"]]


class Bare(str):
    """Text rendered without CDATA (escaped), as WeChat writes coordinates: 23.134521."""

    __slots__ = ()


class XmlError(ValueError):
    """Bytes that are not a small, well-formed, entity-free XML document."""


def cdata(text: str) -> str:
    """``text`` as a CDATA section (a literal ``]]>`` is split across two sections)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _render(value: XmlValue) -> str:
    if isinstance(value, Bare):
        return escape(value)
    if isinstance(value, str):
        return cdata(value)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return "".join(f"<{k}>{_render(v)}</{k}>" for k, v in value.items())
    return "".join(f"<item>{_render(item)}</item>" for item in value)


def render_xml(fields: Mapping[str, XmlValue]) -> bytes:
    """``<xml>...</xml>`` with the fields in the order given, as WeChat writes them."""
    return ("<xml>" + _render(fields) + "</xml>").encode()


def parse_xml(body: bytes) -> ET.Element:
    """Parse a small XML document whose root is ``<xml>``; no DTDs or entities.

    Raises XmlError for anything else.
    """
    if len(body) > MAX_XML_BYTES:
        raise XmlError("document too large")
    if _DECLARATION_RE.search(body):
        raise XmlError("DTDs and entity declarations are not accepted")
    try:
        # Safe here: no DTD can reach the parser (checked above) and the size is bounded.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as exc:
        raise XmlError(str(exc)) from exc
    if root.tag != "xml":
        raise XmlError(f"root element is <{root.tag}>, not <xml>")
    return root


def element_to_value(element: ET.Element) -> str | dict[str, object] | list[object]:
    """A parsed element as plain data: text, a dict of children, or a list of <item>s."""
    children = list(element)
    if not children:
        return element.text or ""
    if all(child.tag == "item" for child in children):
        return [element_to_value(child) for child in children]
    return {child.tag: element_to_value(child) for child in children}

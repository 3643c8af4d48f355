"""Masking of card, phone and ID-card numbers before anything is written to the log."""

from __future__ import annotations

import re

# Mainland ID card: 17 digits and a digit or X. Bank cards: 13 to 19 digits, possibly grouped
# by spaces or dashes. Mobile numbers: 11 digits starting 1[3-9], optionally +86.
_ID_CARD = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9])([0-9]{4})((?:[ -]?[0-9]){5,11})([ -]?[0-9]{4})(?![0-9])")
_DIGIT = re.compile(r"[0-9]")
_PHONE = re.compile(r"(?<![0-9])((?:\+?86[ -]?)?1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


def _card(match: re.Match[str]) -> str:
    middle = re.sub(r"[0-9]", "*", match.group(2))
    return match.group(1) + middle + match.group(3)


def mask(text: str) -> str:
    """Text with ID-card, bank-card and mobile numbers masked (first and last digits kept)."""
    if _DIGIT.search(text) is None:
        return text
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    text = _PHONE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    return _CARD.sub(_card, text)

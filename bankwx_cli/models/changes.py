"""Change sets: what the domain asks the store to change in a row.

A change set is a frozen dataclass of the row's fields, each defaulting to ``KEEP`` (left as
stored); ``None``, where the field's type allows it, stores NULL. The store writes the fields
``given()`` returns, so a change set names every column it may touch and mypy checks each value.
"""

from __future__ import annotations

from dataclasses import fields
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class Keep(Enum):
    """The value of a change-set field that leaves the stored value as it is."""

    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep.KEEP


def given(change: DataclassInstance) -> dict[str, object]:
    """The fields a change set gives (name -> value), in the order they are declared."""
    out: dict[str, object] = {}
    for f in fields(change):
        value = getattr(change, f.name)
        if value is not KEEP:
            out[f.name] = value
    return out

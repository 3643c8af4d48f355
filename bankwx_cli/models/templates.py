"""Template messages' data fields: what each placeholder takes (``template show``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bankwx_cli.models.followers import Template


@dataclass(frozen=True)
class FieldRule:
    """One placeholder of a template: its name, its type (protocol sheet §5.5: ``thing``,
    ``number``, ``amount``, ``time``, ``date``, ``character_string``, ``phone_number``,
    ``const``, or ``legacy`` for untyped names) and whether a message must give it."""

    name: str
    type: str
    required: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required}

    def describe(self) -> str:
        """For people: ``thing1 (thing, required)``."""
        return f"{self.name} ({self.type}, {'required' if self.required else 'optional'})"


@dataclass(frozen=True)
class TemplateRecord(Template):
    """A template with the data fields it needs and each field's rule (``template show``)."""

    field_rules: tuple[FieldRule, ...] = ()

    def to_json(self) -> dict[str, Any]:
        found = {k: v for k, v in super().to_json().items() if k != "field_rules"}
        return {
            **found,
            "fields": self.fields,
            "field_rules": [r.to_json() for r in self.field_rules],
        }

"""Bank services' own values: a follower's binding to a bank customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def masked_card(last4: str) -> str:
    """A card shown by its last four digits only (``****1234``)."""
    return f"****{last4}"


@dataclass(frozen=True)
class Binding:
    """A follower of an account bound to one bank customer, by the card that was verified.

    Only the card's last four digits are kept: never the full number, never a phone number.
    """

    account: str
    openid: str
    customer_id: str
    card_last4: str
    bound_at: str
    bound_by: str  # the operator, or follower:OPENID for the follower's own binding

    @property
    def card(self) -> str:
        return masked_card(self.card_last4)

    def to_json(self) -> dict[str, Any]:
        """What ``follower show`` gives as ``binding``."""
        return {"customer_id": self.customer_id, "card": self.card, "bound_at": self.bound_at}

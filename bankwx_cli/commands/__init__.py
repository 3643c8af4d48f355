"""Command groups: one module per `bankwx GROUP`. Thin: parse, call the domain, render."""

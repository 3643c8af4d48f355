"""What the back-end tests share besides fixtures (a module of its own: conftest modules of
several test folders clash by name when collected together)."""

from __future__ import annotations

KEY = "sandbox-key-0123456789"  # the sandbox's key in these tests

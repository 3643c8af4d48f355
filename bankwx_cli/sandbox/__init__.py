"""The bank's side of the wire: a stand-in for its service bus (``bankwx backend sandbox``).

It serves the back-end contract (``docs/backend-openapi.yaml``) over seeded demo customers
kept in its own SQLite file, "sends" one-time codes by recording them (``GET /sandbox/otp``),
can be slow or failing, and has a clock that tests move. Like ``sim/`` it shares no code with
the product (an import-linter contract bars domain, storage, wechat and backend): the other
side of the wire must not share our bugs.
"""

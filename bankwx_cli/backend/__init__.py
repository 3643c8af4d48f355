"""The bank's back-end (its service bus), over HTTP/JSON: the one adapter the domain uses.

``models`` holds the typed results (amounts in fen) and ``BankBackend``, the interface over
every back-end path of the contract (``docs/backend-openapi.yaml``); ``client`` is the HTTP
adapter (timeouts, no redirects, a circuit breaker and an in-flight limit per process);
``errors`` the exceptions the domain turns into answers. The context builds one adapter per
process (``AppContext.backend``). Like ``storage`` and ``wechat``, commands and the server
reach it only through the context and the domain.
"""

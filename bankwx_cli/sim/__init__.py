"""WeChat's side of the wire: a local stand-in for its API and its followers (``bankwx sim``).

Shares no code with the product but ``bankwx_cli.errors`` (and not wechatpy), so that the
simulator cannot share our bugs. Modules: ``crypto`` (signing, AES), ``xmlutil`` (pushes and
replies as XML), ``codes`` (errcodes), ``state`` (memory), ``routing`` and ``app`` (the ASGI
app), ``api_core`` / ``api_sim`` (endpoints), ``followers`` (pushes to the callback),
``driver`` (client for the command layer), ``server`` (``run``).
"""

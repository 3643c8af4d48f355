"""Everything that speaks WeChat: the API client, tokens, the callback protocol (wechatpy)."""

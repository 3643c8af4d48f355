"""Customer-service calls that are not outbox units (protocol sheet §5.3): the typing indicator.

``POST /cgi-bin/message/custom/typing`` ``{"touser", "command": "Typing"|"CancelTyping"}``
shows the follower that an agent is typing. WeChat allows it within 30 s of the follower's last
interaction (45080 otherwise), shows it for 15 s, refuses it again while it shows (45081) and
ends it when a message reaches the follower; 45072 is a bad command.
"""

from __future__ import annotations

from typing import Literal

from bankwx_cli.wechat.client import WeChatClient

TYPING_PATH = "/cgi-bin/message/custom/typing"
TYPING_BAD_COMMAND = 45072
TYPING_NO_INTERACTION = 45080  # the follower did nothing in the last 30 s
TYPING_ALREADY = 45081  # an indicator is showing

TypingCommand = Literal["Typing", "CancelTyping"]


def typing(client: WeChatClient, openid: str, command: TypingCommand = "Typing") -> None:
    """Show (or cancel) the typing indicator to the follower. Not retried once it may have
    reached WeChat: a second ``Typing`` while one shows is refused (45081). Raises WeChatError."""
    client.post(TYPING_PATH, {"touser": openid, "command": command}, idempotent=False)

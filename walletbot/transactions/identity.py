"""Who a conversation's user is: the wallet binding its conversation id names."""

from __future__ import annotations

from typing import Optional

from walletbot.conversation import ConversationId


def binding_of(sender_id: Optional[str], *, production: bool) -> Optional[ConversationId]:
    """The ``(channel, sender_id)`` of ``bindings`` to resolve the user with, or None.

    The channel comes from the tracker's conversation id, which the channel
    itself set (never the client). An unscoped id (``rasa shell``, Rasa's HTTP
    API) identifies nobody. The REST channel lets its client choose the sender
    id, so it identifies users only in development and tests
    (``zhangsan``/``lisi``); production knows users only by a web session
    bound at login or a bound WeChat OpenID.
    """
    conversation = ConversationId.parse(sender_id)
    if conversation is None or (conversation.channel == "rest" and production):
        return None
    return conversation

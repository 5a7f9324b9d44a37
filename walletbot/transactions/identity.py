"""Which wallet-binding channel a Rasa input channel identifies users by."""

from __future__ import annotations

from typing import Optional

# Rasa input channel name -> bindings.channel
_CHANNELS = {"web": "web", "socketio": "web", "wechat": "wechat", "rest": "rest", "cmdline": "rest"}


def binding_channel(input_channel: Optional[str], *, production: bool) -> Optional[str]:
    """The ``bindings.channel`` to resolve the sender with, or None.

    The REST channel lets the client choose its sender id, so it identifies
    users only in development and tests (``zhangsan``/``lisi``); production
    knows users only by socket.io JWT identity or a bound WeChat OpenID.
    """
    channel = _CHANNELS.get(input_channel or "")
    if channel == "rest" and production:
        return None
    return channel

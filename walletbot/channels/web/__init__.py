"""The web chat page's channel: socket.io, signed sessions, the page and its static files."""

from walletbot.channels.web.channel import WebChatInput

__all__ = ["WebChatInput"]

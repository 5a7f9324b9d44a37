"""The web chat page's channel: socket.io, signed sessions, the page and its static files."""

from walletbot.channels.web.channel import WebChatInput
from walletbot.channels.web.sessions import SessionStoreUnavailable, end_web_session

__all__ = ["WebChatInput", "end_web_session", "SessionStoreUnavailable"]

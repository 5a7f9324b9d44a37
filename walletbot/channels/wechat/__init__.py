"""The WeChat Official Account channel: protocol, API client, formatting, retry de-duplication."""

from walletbot.channels.wechat.channel import WeChatInput

__all__ = ["WeChatInput"]

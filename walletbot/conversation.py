"""Conversation ids: the channel and the channel's own id of the user, as one key.

Rasa keys a tracker by one string. Keyed by the bare sender id, a REST client
could name a web session id or a WeChat OpenID as its ``sender`` and write into
that user's conversation. Every conversation id therefore carries its channel
(``wechat:<openid>``, ``web:<session>``, ``rest:<id>``), the channel sets it
itself, and nothing a client sends can choose another channel's prefix.

The wallet DB keeps the two halves as columns (``channel``, ``sender_id``) of
bindings and tickets; :class:`ConversationId` converts between the two forms,
so the tracker store, tickets, the desk, the relay, bindings, the transcript
and ``walletbot review`` all name a conversation the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from walletbot.store.rows import CHANNELS

SEPARATOR = ":"


@dataclass(frozen=True)
class ConversationId:
    """One conversation: ``channel`` ("rest", "web", "wechat") and ``sender``, the channel's id."""

    channel: str
    sender: str

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")
        if not self.sender:
            raise ValueError("empty sender id")

    def __str__(self) -> str:
        return f"{self.channel}{SEPARATOR}{self.sender}"

    @classmethod
    def parse(cls, value: Optional[str]) -> Optional["ConversationId"]:
        """The id behind a tracker's ``sender_id``; None for an unscoped one.

        Unscoped ids come from Rasa's own doors (``rasa shell``, the HTTP API,
        ``rasa test``): they belong to no channel, so they identify no user.
        """
        if not isinstance(value, str) or SEPARATOR not in value:
            return None
        channel, sender = value.split(SEPARATOR, 1)
        if channel not in CHANNELS or not sender:
            return None
        return cls(channel, sender)


def conversation_id(channel: str, sender: str) -> str:
    """The tracker key of ``sender`` on ``channel``."""
    return str(ConversationId(channel, sender))


def conversation_key(sender_id: str) -> ConversationId:
    """The conversation a tracker id names; an unscoped id is filed under REST.

    For the keys of tickets and feedback only: an unscoped id never
    identifies a wallet user (see :mod:`walletbot.transactions.identity`).
    """
    return ConversationId.parse(sender_id) or ConversationId("rest", sender_id)

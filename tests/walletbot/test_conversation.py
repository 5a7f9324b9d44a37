"""Conversation ids carry their channel; nothing unscoped identifies a user."""

import pytest

from walletbot.conversation import ConversationId, conversation_id, conversation_key
from walletbot.transactions.identity import binding_of


def test_ids_round_trip():
    assert conversation_id("wechat", "oABC") == "wechat:oABC"
    assert ConversationId.parse("web:web-0a1b") == ConversationId("web", "web-0a1b")
    # Only the first separator splits: the sender keeps any colon it has.
    assert ConversationId.parse("rest:a:b") == ConversationId("rest", "a:b")


@pytest.mark.parametrize("value", [None, "", "zhangsan", "sms:123", "web:", ":x", 5])
def test_unscoped_or_unknown_ids_parse_to_none(value):
    assert ConversationId.parse(value) is None


def test_no_id_for_an_unknown_channel_or_empty_sender():
    with pytest.raises(ValueError):
        ConversationId("sms", "1")
    with pytest.raises(ValueError):
        ConversationId("web", "")


def test_ticket_keys_file_unscoped_ids_under_rest():
    assert conversation_key("zhangsan") == ConversationId("rest", "zhangsan")
    assert conversation_key("wechat:o1") == ConversationId("wechat", "o1")


def test_identity_comes_from_the_scoped_id_only():
    assert binding_of("wechat:o1", production=True) == ConversationId("wechat", "o1")
    assert binding_of("web:web-1", production=True) == ConversationId("web", "web-1")
    assert binding_of("rest:zhangsan", production=False) == ConversationId("rest", "zhangsan")
    # REST clients choose their sender: never an identity in production.
    assert binding_of("rest:zhangsan", production=True) is None
    # Rasa's own doors (shell, HTTP API) name no channel: nobody.
    assert binding_of("zhangsan", production=False) is None

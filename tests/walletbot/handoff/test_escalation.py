"""Why a conversation is escalated: the bot's offer the user accepted."""

from walletbot.handoff.escalation import escalation_reason

from tests.actions.test_handoff import bot, listen, user


def test_an_old_offer_does_not_count():
    events = bot("offer", "utter_complain") + listen() + [user("不用", "deny")] + bot(
        "好的", "utter_anything_else") + listen() + [user("转人工", "request_human")]
    assert escalation_reason(events) == ("request_human", 3)

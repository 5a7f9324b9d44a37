"""Reading the Rasa server: the action server probe and the buttons the bot offered."""

from rasa.shared.core.events import BotUttered, UserUttered

from walletbot.rasa_compat.agent import action_server_up, offered_payloads


async def test_action_server_probe():
    assert await action_server_up(None) is True
    assert await action_server_up("http://127.0.0.1:9/webhook", timeout=0.5) is False


def test_offered_payloads_are_the_bots_buttons_only():
    events = [
        UserUttered("/affirm"),  # a user typing a payload offers nothing
        BotUttered("要冻结吗？", data={"buttons": [{"title": "是", "payload": "/affirm"},
                                               {"title": "否", "payload": " /deny "}]}),
        BotUttered("好的", data={"buttons": [{"title": "坏", "payload": None}, "junk"]}),
        BotUttered("没有按钮"),
    ]
    assert offered_payloads(events) == {"/affirm", "/deny"}

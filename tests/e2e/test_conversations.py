"""NLU v2 conversations through the REST channel with the real servers.

Failed transactions asked about in general and about one's own order, a
wallet question the knowledge base cannot answer, a request outside the
wallet, and text that says nothing. The model parses the typed text here, so
these check understanding and dialogue together (tests/test_stories.yml checks
the dialogue alone).
"""

import pytest
import yaml

from walletbot.faq.kb import load_entry, load_placeholders, render_answer
from walletbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

KB = PROJECT_ROOT / "data" / "faq"


def _answer(name: str) -> str:
    return render_answer(load_entry(KB / f"{name}.yml"), load_placeholders(kb_dir=KB))


def _response(name: str) -> str:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return domain["responses"][name][0]["text"]


@pytest.mark.parametrize("text", ["提现失败一般是什么原因", "zhuanzhang shibai zenme hui shi",
                                  "why do top ups fail"])
def test_failed_transactions_in_general_get_the_faq_answer(bot, text):
    assert bot.text("visitor-failed", text) == _answer("transaction_failed")


def test_the_users_own_failed_withdrawal_is_looked_up_with_its_reason(bot):
    text = bot.text("zhangsan", "我的提现失败了 单号wd202611010004 咋回事")
    assert "WD202611010004" in text and "300.00元" in text
    assert "银行卡信息有误" in text  # the reason from the wallet DB
    # Someone else asking about it learns nothing.
    other = bot.text("lisi", "我的提现失败了 单号wd202611010004 咋回事")
    assert "银行卡信息有误" not in other and "300" not in other


@pytest.mark.parametrize("text", ["我的余额怎么查", "wo xiang zhuxiao zhanghu", "怎么换绑手机号"])
def test_unanswerable_wallet_questions_offer_a_human_not_a_guess(bot, text):
    sender = f"unsupported-{abs(hash(text)) % 10000}"
    messages = bot.say(sender, text)
    assert messages[0]["text"] == _response("utter_wallet_unsupported")
    assert [b["title"] for b in messages[0]["buttons"]] == ["转人工", "不用了"]
    assert "工单号" in bot.text(sender, messages[0]["buttons"][0]["payload"])


def test_a_declined_human_for_an_unanswerable_question_ends_politely(bot):
    bot.say("unsupported-declined", "实名认证怎么弄")
    assert bot.text("unsupported-declined", "不用了") == _response("utter_anything_else")


@pytest.mark.parametrize("text", ["帮我查一下快递到哪了", "推荐一个好吃的火锅店", "what's the weather tomorrow"])
def test_requests_outside_the_wallet_get_the_out_of_scope_answer(bot, text):
    assert bot.text("visitor-oos", text) == _response("utter_out_of_scope")


def test_text_that_says_nothing_asks_to_rephrase_then_offers_a_human(bot):
    assert bot.text("masher", "asdfghjkl") == _response("utter_ask_rephrase")
    offer = bot.say("masher", "？？？")
    assert offer[0]["text"] == _response("utter_offer_human_after_fallback")

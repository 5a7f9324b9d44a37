import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.transactions import (
    MSG_ASK, MSG_DB_DOWN, MSG_GAVE_UP, MSG_INVALID, MSG_UNBOUND,
    ActionAskOrderId, ActionCheckTransaction, ValidateTransactionForm,
)
from walletbot.store.service import WalletService

from tests.actions.conftest import make_tracker

DOMAIN = {"slots": {"order_id": {}}, "forms": {"transaction_form": {"required_slots": ["order_id"]}}}


def slot_events(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def texts(dispatcher):
    return [m.get("text") or "" for m in dispatcher.messages]


async def check(service, clock, **tracker_kwargs):
    dispatcher = CollectingDispatcher()
    action = ActionCheckTransaction(service=service, clock=clock)
    events = await action.run(dispatcher, make_tracker(**tracker_kwargs), {})
    return dispatcher, slot_events(events)


async def test_own_overdue_withdrawal_is_described(service, clock):
    dispatcher, slots = await check(service, clock, slots={"order_id": "WD202611180002"})
    (text,) = texts(dispatcher)
    assert "1000.00元" in text and "处理中" in text and "超时" in text
    assert slots["tx_followup"] == "overdue"
    assert slots["order_id"] is None and slots["transaction_attempts"] == 0


async def test_failed_withdrawal_has_reason(service, clock):
    dispatcher, slots = await check(service, clock, slots={"order_id": "wd 2026 1101 0004"})
    (text,) = texts(dispatcher)
    assert "失败" in text and "银行卡信息有误" in text
    assert slots["tx_followup"] is None


async def test_someone_elses_order_reads_exactly_like_a_missing_one(service, clock):
    other, _ = await check(service, clock, sender="lisi", slots={"order_id": "WD202611180002"})
    missing, _ = await check(service, clock, sender="lisi", slots={"order_id": "WD209912310009"})
    (other_text,) = texts(other)
    (missing_text,) = texts(missing)
    assert other_text == missing_text.replace("WD209912310009", "WD202611180002")
    for leak in ("1000", "处理中", "张三", "6789", "U1001"):
        assert leak not in other_text


async def test_unbound_sender_sees_no_data_and_is_offered_a_human(service, clock):
    dispatcher, slots = await check(
        service, clock, sender="stranger", slots={"order_id": "WD202611180002"}
    )
    assert texts(dispatcher) == [MSG_UNBOUND]
    assert slots["tx_followup"] == "offer_human"


async def test_rest_senders_are_not_trusted_in_production(service, clock, monkeypatch):
    monkeypatch.setenv("WALLETBOT_ENV", "production")
    dispatcher, _ = await check(service, clock, slots={"order_id": "WD202611180002"})
    assert texts(dispatcher) == [MSG_UNBOUND]


async def test_a_lookup_reads_no_configuration_file(service, clock, monkeypatch):
    # Who the user is gets asked several times a turn; reading config/dev.env
    # each time was 15 % of the action server's CPU under load.
    from walletbot import settings

    await check(service, clock, slots={"order_id": "TU202611200001"})  # opens the database

    def no_file(path):
        raise AssertionError(f"read {path} during a lookup")

    monkeypatch.setattr(settings, "read_env_file", no_file)
    dispatcher, _ = await check(service, clock, slots={"order_id": "TU202611200001"})
    assert "500.00元" in texts(dispatcher)[0]


async def test_wechat_openid_identifies_the_user(service, clock):
    dispatcher, _ = await check(
        service, clock, sender="o_demo_zhangsan", channel="wechat",
        slots={"order_id": "TU202611200001"},
    )
    assert "500.00元" in texts(dispatcher)[0]


async def test_injection_string_is_just_unknown(service, clock):
    dispatcher, slots = await check(service, clock, slots={"order_id": "' OR '1'='1"})
    assert texts(dispatcher) == [MSG_GAVE_UP]
    assert slots["tx_followup"] == "offer_human"


async def test_db_down_apologises_and_offers_a_human(clock):
    def broken_engine():
        from walletbot.store.db import make_engine

        # Nothing listens on port 1: the connection is refused.
        return make_engine("postgresql://wallet:x@127.0.0.1:1/wallet")

    dispatcher, slots = await check(
        WalletService(engine_factory=broken_engine), clock, slots={"order_id": "WD202611180002"}
    )
    assert texts(dispatcher) == [MSG_DB_DOWN]
    assert slots["tx_followup"] == "offer_human"


async def test_ask_lists_recent_orders_of_the_named_type_as_buttons(service):
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"tx_type": "topup"}, text="我最近的充值到账了吗")
    await ActionAskOrderId(service=service).run(dispatcher, tracker, {})
    (message,) = dispatcher.messages
    assert "TU202611210003" in message["text"] and "TU202611200001" in message["text"]
    assert "WD" not in message["text"]
    payloads = [b["payload"] for b in message["buttons"]]
    assert payloads[0] == '/inform{"order_id": "TU202611210003"}'  # newest first


async def test_ask_without_history_asks_for_a_number(service):
    dispatcher = CollectingDispatcher()
    await ActionAskOrderId(service=service).run(dispatcher, make_tracker(sender="lisi",
                                                slots={"tx_type": "refund"}), {})
    assert texts(dispatcher) == [MSG_ASK]


class TestForm:
    async def validate(self, service, text, *, attempts=0, intent="inform", entities=None):
        dispatcher = CollectingDispatcher()
        tracker = make_tracker(
            text=text, intent=intent, entities=entities,
            slots={"requested_slot": "order_id", "transaction_attempts": attempts,
                   "order_id": None},
            active_loop="transaction_form",
        )
        events = await ValidateTransactionForm(service=service).run(dispatcher, tracker, DOMAIN)
        return dispatcher, slot_events(events)

    async def test_free_text_with_an_order_number_is_accepted(self, service):
        _, slots = await self.validate(service, "是这个 ｗｄ２０２６ １１１８ ０００２ 吧")
        assert slots["order_id"] == "WD202611180002"

    async def test_invalid_reply_is_reasked_with_a_hint(self, service):
        dispatcher, slots = await self.validate(service, "我的卡号是6222020200112233445")
        assert texts(dispatcher) == [MSG_INVALID]
        assert "6222" not in MSG_INVALID
        assert slots["order_id"] is None and slots["transaction_attempts"] == 1
        # The form keeps asking for the order number.
        assert slots.get("requested_slot", "order_id") == "order_id"

    async def test_second_invalid_reply_ends_the_form(self, service):
        _, slots = await self.validate(service, "不知道", attempts=1)
        assert slots["transaction_attempts"] == 2
        assert slots["requested_slot"] is None

    async def test_asking_for_a_human_leaves_at_once(self, service):
        _, slots = await self.validate(service, "转人工", intent="request_human")
        assert slots["transaction_attempts"] == 2
        assert slots["requested_slot"] is None

    async def test_unbound_user_is_not_asked(self, service):
        dispatcher = CollectingDispatcher()
        tracker = make_tracker(sender="stranger", active_loop="transaction_form")
        events = await ValidateTransactionForm(service=service).run(dispatcher, tracker, DOMAIN)
        assert slot_events(events).get("requested_slot") is None


class CountingService:
    """The real service, counting the user lookups that reach the database."""

    def __init__(self, service):
        self.service, self.lookups = service, 0

    def __getattr__(self, name):
        return getattr(self.service, name)

    async def user_for(self, **kwargs):
        self.lookups += 1
        return await self.service.user_for(**kwargs)


async def test_a_form_validation_reads_the_user_once_and_the_next_call_reads_again(service):
    counting = CountingService(service)
    tracker_of = lambda: make_tracker(  # noqa: E731
        text="WD202611180002", intent="inform",
        slots={"requested_slot": "order_id", "transaction_attempts": 0, "order_id": None},
        active_loop="transaction_form")
    events = await ValidateTransactionForm(service=counting).run(
        CollectingDispatcher(), tracker_of(), DOMAIN)
    assert slot_events(events)["order_id"] == "WD202611180002"
    assert counting.lookups == 1  # rasa_sdk asked required_slots three times
    # Unbound in between: the next call (a new request, a new tracker) sees it.
    await service.unbind(channel="rest", sender_id="zhangsan")
    events = await ValidateTransactionForm(service=counting).run(
        CollectingDispatcher(), tracker_of(), DOMAIN)
    assert counting.lookups == 2
    assert slot_events(events).get("requested_slot") is None

"""Transaction status lookups: the user's own top-ups, withdrawals, transfers, refunds.

Logic lives in :mod:`walletbot.transactions`; these classes translate between
Rasa trackers and it. Collaborators (the wallet service, the clock) are
constructor arguments so tests pass their own.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.nlu.entities import normalize_order_id
from walletbot.nlu.normalize import normalize_text
from walletbot.transactions import describe as wording
from walletbot.store.service import WalletService, WalletUnavailable

from actions.common import UsesWallet, current_user, utcnow

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
# Intents with which the user walks away from the order-number question.
_LEAVE_INTENTS = {"request_human", "deny", "goodbye", "complain"}
_ORDER_IN_TEXT = re.compile(r"(?i)(?:tu|wd|tr|rf)[\s\-_]*(?:\d[\s\-_]*){12}")

MSG_UNBOUND = (
    "查询交易需要先确认您的身份。请在网页版登录您的OK钱包账户，"
    "或在公众号中绑定OK钱包账户后再来查询。为了您的资金安全，我们不会在未验证身份时展示任何交易信息。"
)
MSG_NOT_FOUND = (
    "没有找到订单号为 {order_id} 的交易记录。请核对订单号（两位字母加12位数字，"
    "例如 WD202611180002），可在APP的交易记录中查看。"
)
MSG_ASK = "请告诉我需要查询的订单号（两位字母加12位数字，例如 WD202611180002），可在APP的交易记录中找到。"
MSG_INVALID = "您输入的内容看起来不是有效的订单号。订单号由两位字母（TU/WD/TR/RF）加12位数字组成，例如 WD202611180002，请再试一次。"
MSG_GAVE_UP = "抱歉，我还是没能识别出订单号。"
MSG_DB_DOWN = "抱歉，交易查询系统暂时无法访问，请稍后再试。给您带来不便，非常抱歉。"
MSG_FROZEN_NOTE = "提示：您的账户目前处于冻结状态。"


class ActionCheckTransaction(UsesWallet, Action):
    """Answers the status of the order in slot ``order_id`` (form submit)."""

    def __init__(
        self,
        service: Optional[WalletService] = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._service = service
        self._clock = clock

    def name(self) -> Text:
        """Action name in the domain."""
        return "action_check_transaction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Looks the order up for the current user only."""
        reset = [SlotSet("order_id", None), SlotSet("transaction_attempts", 0)]
        try:
            user = await current_user(tracker, self.service)
            if user is None:
                dispatcher.utter_message(text=MSG_UNBOUND)
                return reset + [SlotSet("tx_followup", "offer_human")]
            order_id = normalize_order_id(tracker.get_slot("order_id") or "")
            if order_id is None:
                dispatcher.utter_message(text=MSG_GAVE_UP)
                return reset + [SlotSet("tx_followup", "offer_human")]
            tx = await self.service.transaction(user_id=user.user_id, order_id=order_id)
        except WalletUnavailable:
            dispatcher.utter_message(text=MSG_DB_DOWN)
            return reset + [SlotSet("tx_followup", "offer_human")]

        if tx is None:
            dispatcher.utter_message(text=MSG_NOT_FOUND.format(order_id=order_id))
            return reset + [SlotSet("tx_followup", None)]
        now = self._clock()
        text = wording.describe(tx, now)
        if user.frozen:
            text += "\n" + MSG_FROZEN_NOTE
        dispatcher.utter_message(text=text)
        followup = "overdue" if wording.is_overdue(tx, now) else None
        return reset + [SlotSet("tx_followup", followup)]


class ActionAskOrderId(UsesWallet, Action):
    """Asks for the order number, offering the user's recent orders as buttons."""

    def __init__(self, service: Optional[WalletService] = None) -> None:
        self._service = service

    def name(self) -> Text:
        """Rasa calls ``action_ask_<slot>`` to ask for a form slot."""
        return "action_ask_order_id"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Lists recent orders (of the named type) or asks for a number."""
        tx_type = tracker.get_slot("tx_type")
        try:
            user = await current_user(tracker, self.service)
            recent = (
                await self.service.recent(user_id=user.user_id, tx_type=tx_type, limit=5)
                if user
                else []
            )
        except WalletUnavailable:
            recent = []
        if not recent:
            dispatcher.utter_message(text=MSG_ASK)
            return []
        kind = wording.TYPE_NAMES.get(tx_type, "交易")
        lines = [f"您最近的{kind}记录如下："]
        lines += [f"{i}. {wording.short_line(tx)}" for i, tx in enumerate(recent, start=1)]
        lines.append("点击订单查看详情，或直接输入要查询的订单号。")
        buttons = [
            {
                "title": f"{tx.order_id} {wording.money(tx)}",
                "payload": f'/inform{{"order_id": "{tx.order_id}"}}',
            }
            for tx in recent
        ]
        dispatcher.utter_message(text="\n".join(lines), buttons=buttons)
        return []


class ValidateTransactionForm(UsesWallet, FormValidationAction):
    """Collects a valid order number; two failed tries end with an offer of a human."""

    def __init__(self, service: Optional[WalletService] = None) -> None:
        self._service = service

    def name(self) -> Text:
        """Validation action of ``transaction_form``."""
        return "validate_transaction_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Nothing to ask when the user is unknown or has given up."""
        if (tracker.get_slot("transaction_attempts") or 0) >= MAX_ATTEMPTS:
            return []
        try:
            if await current_user(tracker, self.service) is None:
                return []
        except WalletUnavailable:
            return []
        return domain_slots

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """While the form asks for it, any reply is a candidate order number."""
        if tracker.get_slot("requested_slot") != "order_id":
            return {}
        if any(e.get("entity") == "order_id" for e in tracker.latest_message.get("entities", [])):
            return {}  # the entity mapping already filled it
        return {"order_id": tracker.latest_message.get("text") or ""}

    async def validate_order_id(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """Accepts a well-formed number; re-asks with a hint, then gives up."""
        raw = str(slot_value or "")
        order_id = normalize_order_id(raw)
        if order_id is None:
            match = _ORDER_IN_TEXT.search(normalize_text(raw))
            order_id = normalize_order_id(match.group()) if match else None
        if order_id:
            return {"order_id": order_id}

        attempts = int(tracker.get_slot("transaction_attempts") or 0) + 1
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent in _LEAVE_INTENTS:
            attempts = MAX_ATTEMPTS
        elif attempts < MAX_ATTEMPTS:
            # The reply is not echoed: it may hold a card or phone number.
            dispatcher.utter_message(text=MSG_INVALID)
        return {"order_id": None, "transaction_attempts": attempts}

"""A long conversation goes the same way whether a turn sees the whole session or its window.

Each Rasa process keeps trackers between turns and cuts a kept tracker back
to ``TRACKER_TURN_WINDOW`` events once it has twice as many
(walletbot/rasa_compat/trackerstore.py). Two bots, one with a small window
and one that gives every turn the whole session, get the same 96-turn
conversation: FAQs, lookups, a form that asks, rejects and then takes an
order number, small talk. Every turn must run the same actions and end with
the same slots, and the windowed bot's stored conversation must be whole.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from typing import Any, Dict, List, Tuple

import pytest

from tests.e2e.conftest import RunningBot, start_bot

SENDER = "zhangsan"  # bound to 张三 in the demo data: lookups run the whole path
SCRIPT = ["你好", "怎么提现", "帮我查个订单", "abc123", "WD202611180002", "不用了", "提现手续费",
          "帮我查一下TU202611210003", "谢谢", "你是机器人吗", "怎么充值", "再见"]
ROUNDS = 8


def tracker(bot: RunningBot) -> Dict[str, Any]:
    url = f"{bot.base}/conversations/rest:{SENDER}/tracker?token=dev-rasa-token"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def turns(events: List[Dict[str, Any]]) -> List[Tuple[str, Tuple[str, ...]]]:
    """(user text, actions the bot ran after it) for every user message."""
    out: List[Tuple[str, List[str]]] = []
    for event in events:
        if event["event"] == "user":
            out.append((event.get("text"), []))
        elif event["event"] == "action" and out and event["name"] != "action_listen":
            out[-1][1].append(event["name"])
    return [(text, tuple(actions)) for text, actions in out]


@pytest.fixture(scope="module")
def bots(trained_model, tmp_path_factory):
    started = []
    try:
        for window, ports in (("50", (15405, 15455)), ("0", (15406, 15456))):
            env = dict(os.environ, TRACKER_TURN_WINDOW=window, TRACKER_MAX_EVENTS="0",
                       RATE_LIMIT_PER_MINUTE="0")
            started.append(start_bot(trained_model, tmp_path_factory.mktemp(f"window{window}"),
                                     env, *ports))
        yield started
    finally:
        for bot in started:
            bot.stop(signal.SIGKILL)


def test_a_windowed_conversation_runs_the_same_actions_and_keeps_every_event(bots):
    windowed, whole = bots
    for _ in range(ROUNDS):
        for text in SCRIPT:
            for bot in bots:
                assert bot.say(SENDER, text), text

    a, b = tracker(windowed), tracker(whole)
    assert len(turns(a["events"])) == len(SCRIPT) * ROUNDS
    assert turns(a["events"]) == turns(b["events"])
    assert a["slots"] == b["slots"]
    assert a["active_loop"] == b["active_loop"]
    # The windowed bot cut its kept tracker many times (96 turns, > 500 events, window 50)
    # and stored every event all the same.
    assert len(a["events"]) == len(b["events"]) > 500
    lookups = [t for t in turns(a["events"]) if t[0] == "WD202611180002"]
    assert all("action_check_transaction" in actions for _, actions in lookups), lookups

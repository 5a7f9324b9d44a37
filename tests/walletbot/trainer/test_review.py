"""``walletbot review``: poorly handled messages from a real Rasa SQL tracker store."""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

from walletbot.cli import main
from walletbot.trainer import review
from walletbot.trainer.cluster import group_texts


def _parse(
    text: str, intent: str, confidence: float, *, faq: Optional[str] = None,
    fell_back: bool = False, entities: Optional[List[Dict]] = None,
) -> Dict:
    """A parse result shaped like Rasa's (FallbackClassifier, ResponseSelector)."""
    ranking = [{"name": intent, "confidence": confidence},
               {"name": "greet", "confidence": round(1 - confidence, 3)}]
    top = {"name": intent, "confidence": confidence}
    if fell_back:
        top = {"name": "nlu_fallback", "confidence": 0.3}
        ranking = [top] + ranking
    data = {"text": text, "intent": top, "intent_ranking": ranking, "entities": entities or []}
    if faq:
        data["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"intent_response_key": f"faq/{faq}", "confidence": 0.9,
                                 "utter_action": f"utter_faq/{faq}", "responses": []},
                    "ranking": []},
        }
    return data


def _conversation(sender: str, turns: List) -> "object":
    from rasa.shared.core.events import (
        ActionExecuted, ConversationPaused, SessionStarted, SlotSet, UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    events = [ActionExecuted("action_session_start"), SessionStarted(),
              ActionExecuted("action_listen")]
    for turn in turns:
        kind = turn[0]
        if kind == "user":
            parse = turn[1]
            events.append(UserUttered(parse["text"], parse["intent"], parse["entities"], parse))
        elif kind == "action":
            events += [ActionExecuted(turn[1]), ActionExecuted("action_listen")]
        elif kind == "pause":
            events.append(ConversationPaused())
        elif kind == "slot":
            events.append(SlotSet(turn[1], turn[2]))
    return DialogueStateTracker.from_events(sender, events)


CONVERSATIONS = {
    "u1": [
        ("user", _parse("你好", "greet", 0.99)), ("action", "utter_greet"),
        ("user", _parse("我的卡被吞了怎么办", "faq", 0.21, faq="withdraw_how", fell_back=True)),
        ("action", "utter_ask_rephrase"),
        # Confident NLU, but dialogue fell back.
        ("user", _parse("卡被ATM吞了怎么办啊", "faq", 0.8, faq="withdraw_how")),
        ("action", "action_default_fallback"),
    ],
    "u2": [
        ("user", _parse("我的卡被吞了怎么办？", "faq", 0.25, faq="withdraw_how", fell_back=True)),
        ("action", "utter_ask_rephrase"),
        ("user", _parse("提现到账好慢", "faq", 0.42, faq="withdraw_time")),
        ("action", "utter_faq"),
    ],
    "u3": [
        ("user", _parse("为什么我的钱少了", "faq", 0.9, faq="withdraw_fee")),
        ("action", "utter_faq"),
        ("user", _parse("转人工", "request_human", 0.98)),
        ("action", "action_handoff"), ("pause",),
    ],
    "u4": [
        ("user", _parse("注册收不到验证码", "faq", 0.95, faq="sms_code")), ("action", "utter_faq"),
        ("user", _parse('/rate_service{"csat_score": "1"}', "rate_service", 1.0,
                        entities=[{"entity": "csat_score", "value": "1"}])),
        ("action", "action_store_csat"),
    ],
    "u5": [
        ("user", _parse("客服态度太差了", "complain", 0.97)), ("action", "utter_complain"),
        ("slot", "csat_score", 2),
    ],
    "happy": [
        ("user", _parse("你好", "greet", 0.99)), ("action", "utter_greet"),
        ("user", _parse("提现手续费多少", "faq", 0.97, faq="withdraw_fee")),
        ("action", "utter_faq"),
        ("user", _parse('/rate_service{"csat_score": "5"}', "rate_service", 1.0,
                        entities=[{"entity": "csat_score", "value": "5"}])),
        ("action", "action_store_csat"),
    ],
}


@pytest.fixture
def tracker_db(tmp_path: Path) -> str:
    """A SQLite tracker store written by Rasa's own SQLTrackerStore."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    path = tmp_path / "tracker.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    for sender, turns in CONVERSATIONS.items():
        asyncio.run(store.save(_conversation(sender, turns)))
    store.engine.dispose()
    return f"sqlite:///{path}"


def _export(tmp_path: Path, url: str, name: str = "review.csv") -> Dict[str, Dict[str, str]]:
    out = tmp_path / name
    assert main(["review", "--db-url", url, "--out", str(out), "--no-progress"]) == 0
    if out.suffix == ".yml":
        rows = yaml.safe_load(out.read_text(encoding="utf-8"))
    else:
        with out.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
    return {str(row["text"]): row for row in rows}


def test_review_finds_poorly_handled_messages(tracker_db, tmp_path, capsys):
    rows = _export(tmp_path, tracker_db)
    assert set(rows) == {
        "我的卡被吞了怎么办", "卡被ATM吞了怎么办啊", "提现到账好慢", "为什么我的钱少了",
        "注册收不到验证码", "客服态度太差了",
    }
    swallowed = rows["我的卡被吞了怎么办"]
    assert (swallowed["count"], swallowed["senders"]) == ("2", "2")
    assert swallowed["reasons"] == "fallback×2"
    assert swallowed["predicted"] == "faq/withdraw_how"
    assert rows["卡被ATM吞了怎么办啊"]["reasons"] == "fallback"
    assert rows["提现到账好慢"]["reasons"] == "low_confidence"
    assert rows["提现到账好慢"]["predicted"] == "faq/withdraw_time"
    assert rows["为什么我的钱少了"]["reasons"] == "escalated"
    assert rows["注册收不到验证码"]["reasons"] == "low_csat"
    assert rows["客服态度太差了"]["reasons"] == "low_csat"
    assert all(row["intent"] == "" for row in rows.values())
    # Similar messages share a group.
    assert swallowed["group"] == rows["卡被ATM吞了怎么办啊"]["group"]
    assert swallowed["group"] != rows["提现到账好慢"]["group"]
    out = capsys.readouterr().out
    assert "7 poorly handled messages, 6 distinct" in out
    assert "我的卡被吞了怎么办" in out


def test_review_writes_yaml_with_an_empty_intent(tracker_db, tmp_path):
    rows = _export(tmp_path, tracker_db, "review.yml")
    assert rows["提现到账好慢"]["intent"] is None
    assert "walletbot review import" in (tmp_path / "review.yml").read_text(encoding="utf-8")


def test_labelled_review_file_imports(tracker_db, tmp_path, project):
    out = tmp_path / "review.csv"
    assert main(["review", "--db-url", tracker_db, "--out", str(out), "--no-progress"]) == 0
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["intent"] = {"提现到账好慢": "faq/withdraw_fee", "为什么我的钱少了": "faq/withdraw_fee"}\
            .get(row["text"], "")
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["review", "import", str(out), *project.data_args()]) == 0
    text = (project.kb / "withdraw_fee.yml").read_text(encoding="utf-8")
    assert text.split("取现收多少手续费\n")[1] in (
        "  - 提现到账好慢\n  - 为什么我的钱少了\n", "  - 为什么我的钱少了\n  - 提现到账好慢\n"
    )


def test_a_missing_events_table_is_a_clear_error(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["review", "--db-url", url, "--out", str(tmp_path / "r.csv"), "--no-progress"]) == 2
    assert "has no 'events' table" in capsys.readouterr().err


def test_low_confidence_threshold_is_configurable(tracker_db):
    flagged = review.flag_messages(review.read_events(url=tracker_db), min_confidence=0.95)
    texts = {m.text for m in flagged}
    assert "为什么我的钱少了" in texts and "你好" not in texts


def test_only_recent_events_are_read(tracker_db):
    assert len(list(review.read_events(url=tracker_db, since=time.time() - 3600))) > 20
    assert list(review.read_events(url=tracker_db, since=time.time() + 3600)) == []


def test_grouping_is_by_similarity():
    groups = group_texts(["提现多久到账", "提现多久能到账啊", "怎么注册", "注册怎么弄", "asdf"])
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len(set(groups)) == 3


def test_old_unmasked_messages_are_masked_in_the_export(tmp_path):
    """Conversations stored before masking covered a form must not leak through the export."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    secrets = ["6222.0202.0011.2233.445", "密码是：Abc@2026", "１３８１２３４５６７８", "验证码 8 8 4 5 1 2"]
    path = tmp_path / "old.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    turns = [("user", _parse(f"提现WD202611180002没到账 {s}", "faq", 0.2, faq="withdraw_time",
                             fell_back=True)) for s in secrets]
    asyncio.run(store.save(_conversation("old", turns)))
    store.engine.dispose()
    for name in ("review.csv", "review.yml"):
        _export(tmp_path, f"sqlite:///{path}", name)
        blob = (tmp_path / name).read_text(encoding="utf-8-sig")
        for secret in ["02020011", "Abc@2026", "１２３４", "8 8 4 5"]:
            assert secret not in blob, (name, secret)
        assert blob.count("WD202611180002") == len(secrets)
        assert "***************3445" in blob and "138****5678" in blob and "密码是：******" in blob

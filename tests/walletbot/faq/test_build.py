import yaml
from rasa.shared.nlu.training_data.loading import load_data

from walletbot.faq.build import HEADER, build, is_up_to_date

from .conftest import PLACEHOLDERS, REGISTER, WITHDRAW


def test_build_writes_retrieval_intents_and_responses(make_kb, tmp_path):
    kb = make_kb(withdraw_fee=WITHDRAW, register=REGISTER, _placeholders=PLACEHOLDERS)
    out = tmp_path / "nlu" / "faq.yml"
    assert build(kb_dir=kb, out_path=out) is True
    text = out.read_text(encoding="utf-8")
    assert text.startswith(HEADER) and "GENERATED" in text

    data = load_data(str(out))
    keys = {m.get("intent_response_key") for m in data.intent_examples}
    assert keys == {"faq/register", "faq/withdraw_fee"}
    assert len(data.intent_examples) == 4
    answer = data.responses["utter_faq/withdraw_fee"][0]["text"]
    assert answer.startswith("提现手续费：【待配置：提现手续费标准】。\n每次")


def test_build_is_deterministic_and_idempotent(make_kb, tmp_path):
    kb = make_kb(withdraw_fee=WITHDRAW, register=REGISTER, _placeholders=PLACEHOLDERS)
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    build(kb_dir=kb, out_path=first)
    build(kb_dir=kb, out_path=second)
    assert first.read_bytes() == second.read_bytes()
    assert build(kb_dir=kb, out_path=first) is False
    assert is_up_to_date(kb_dir=kb, out_path=first)


def test_edit_makes_generated_file_stale(make_kb, tmp_path):
    kb = make_kb(register=REGISTER)
    out = tmp_path / "faq.yml"
    build(kb_dir=kb, out_path=out)
    (kb / "register.yml").write_text(REGISTER + "  - 注册流程\n", encoding="utf-8")
    assert not is_up_to_date(kb_dir=kb, out_path=out)


def test_questions_with_yaml_special_characters_survive(make_kb, tmp_path):
    tricky = REGISTER.replace("  - 如何开户\n", "  - '# 注册: 怎么弄?'\n  - \"'引号' & *星号\"\n")
    kb = make_kb(register=tricky)
    out = tmp_path / "faq.yml"
    build(kb_dir=kb, out_path=out)
    texts = {m.get("text") for m in load_data(str(out)).intent_examples}
    assert {"# 注册: 怎么弄?", "'引号' & *星号"} <= texts
    yaml.safe_load(out.read_text(encoding="utf-8"))

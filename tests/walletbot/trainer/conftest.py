"""A tiny walletbot-shaped project the trainer tests build in a temporary folder.

Four labels (greet, goodbye, faq/withdraw_fee, faq/register), a jieba + DIET +
ResponseSelector pipeline with few epochs (a model trains in seconds), rules,
a knowledge base with a placeholder, and a small held-out test set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from walletbot.faq.build import build

LABELS = ("greet", "goodbye", "faq/withdraw_fee", "faq/register")

EXAMPLES: Dict[str, List[str]] = {
    "greet": [
        "你好", "您好", "在吗", "哈喽", "早上好", "有人吗", "hi", "hello", "嗨", "晚上好",
        "客服你好", "您好在线吗",
    ],
    "goodbye": [
        "再见", "拜拜", "回头见", "下次聊", "先走了", "没事了再见", "bye", "88", "告辞",
        "就这样吧再见", "我先下了", "回见",
    ],
    "faq/withdraw_fee": [
        "提现手续费", "提现要钱吗", "提现收费吗", "提现扣多少钱", "取钱要手续费吗", "提现费用",
        "提现手续费多少", "提现怎么收费", "提现会扣钱吗", "提现是免费的吗", "提现费率是多少",
        "取现收多少手续费",
    ],
    "faq/register": [
        "怎么注册", "如何注册账号", "注册流程", "我想开户", "新用户怎么注册", "注册要什么",
        "怎么开通钱包", "注册账号的步骤", "在哪里注册", "注册需要身份证吗", "怎样开个账户",
        "我要注册",
    ],
}

# Written apart from EXAMPLES: no line occurs in the training data.
TEST_SET: Dict[str, List[str]] = {
    "greet": ["你好呀", "喂 有人在吗", "嗨 客服", "早安"],
    "goodbye": ["那再见了", "拜拜啦", "好的 回头聊", "下次再说 再见"],
    "faq/withdraw_fee": ["提现的手续费是多少", "取钱收费不", "提现要扣手续费吗", "提个现收多少钱"],
    "faq/register": ["注册怎么弄", "我想注册一个账号", "开户流程是什么", "新手如何注册"],
}

CONFIG = """\
recipe: default.v1
language: zh
assistant_id: tiny
pipeline:
  - name: JiebaTokenizer
  - name: CountVectorsFeaturizer
    analyzer: char
    min_ngram: 1
    max_ngram: 3
  - name: DIETClassifier
    epochs: {epochs}
    number_of_transformer_layers: 0
    entity_recognition: false
    constrain_similarities: true
    random_seed: 1
  - name: ResponseSelector
    retrieval_intent: faq
    epochs: {epochs}
    constrain_similarities: true
    random_seed: 1
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: RulePolicy
"""

DOMAIN = """\
version: "3.1"
intents:
  - greet
  - goodbye
  - faq
responses:
  utter_greet:
  - text: 你好，请问有什么可以帮您？
  utter_goodbye:
  - text: 再见
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: goodbye
  steps:
  - intent: goodbye
  - action: utter_goodbye
- rule: faq
  steps:
  - intent: faq
  - action: utter_faq
"""

PLACEHOLDERS = """\
# Facts the sources do not give.
withdraw_fee: "【待配置：提现手续费标准】"
hotline: "400-000-0000"
"""

FAQ_FILES = {
    "withdraw_fee": ("提现手续费", "提现手续费：{{withdraw_fee}}。\n提现页面会显示本次手续费。"),
    "register": ("如何注册", "下载 OK钱包 APP，用手机号注册。\n有问题请拨打 {{hotline}}。"),
}


def faq_text(name: str, title: str, answer: str, questions: List[str]) -> str:
    """A knowledge-base file as trainers write it (with a comment)."""
    body = "\n".join(f"  {line}" for line in answer.split("\n"))
    listed = "".join(f"  - {q}\n" for q in questions)
    return (
        f"# FAQ knowledge base entry: the source of truth for faq/{name}.\n"
        f"intent: {name}\ntitle: {title}\nanswer: |-\n{body}\nquestions:\n{listed}"
    )


def nlu_text(blocks: Dict[str, List[str]]) -> str:
    """An NLU YAML file with a comment and one block per intent."""
    out = ['version: "3.1"\n', "# Conversation intents.\n", "nlu:\n"]
    for intent, examples in blocks.items():
        out.append(f"- intent: {intent}\n  examples: |\n")
        out += [f"    - {e}\n" for e in examples]
        out.append("\n")
    return "".join(out)


@dataclass(frozen=True)
class TinyProject:
    """Paths of a tiny project."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yml"

    @property
    def domain(self) -> Path:
        return self.root / "domain.yml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def kb(self) -> Path:
        return self.root / "data" / "faq"

    @property
    def nlu(self) -> Path:
        return self.root / "data" / "nlu"

    @property
    def faq_nlu(self) -> Path:
        return self.nlu / "faq.yml"

    @property
    def conversation(self) -> Path:
        return self.nlu / "conversation.yml"

    @property
    def test_set(self) -> Path:
        return self.root / "tests" / "data" / "nlu_test.yml"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def data_args(self) -> List[str]:
        """The data-file options every data command takes."""
        return [
            "--kb", str(self.kb), "--nlu", str(self.nlu), "--faq-nlu", str(self.faq_nlu),
            "--conversation", str(self.conversation), "--domain", str(self.domain),
        ]

    def test_args(self) -> List[str]:
        """The test-set options of evaluate / compare / promote."""
        return ["--test", str(self.test_set), "--train-data", str(self.nlu), "--no-progress"]

    def write_faq(self, name: str, questions: List[str], *, answer: Optional[str] = None) -> Path:
        title, default_answer = FAQ_FILES.get(name, (name, "答案。"))
        path = self.kb / f"{name}.yml"
        path.write_text(
            faq_text(name, title, default_answer if answer is None else answer, questions),
            encoding="utf-8",
        )
        return path

    def rebuild(self) -> None:
        build(kb_dir=self.kb, out_path=self.faq_nlu)


def make_project(
    root: Path,
    *,
    epochs: int = 40,
    examples: Optional[Dict[str, List[str]]] = None,
) -> TinyProject:
    """Writes a tiny project under ``root``."""
    examples = examples or EXAMPLES
    project = TinyProject(root)
    project.kb.mkdir(parents=True, exist_ok=True)
    project.nlu.mkdir(parents=True, exist_ok=True)
    project.test_set.parent.mkdir(parents=True, exist_ok=True)
    project.config.write_text(CONFIG.format(epochs=epochs), encoding="utf-8")
    project.domain.write_text(DOMAIN, encoding="utf-8")
    (project.data / "rules.yml").write_text(RULES, encoding="utf-8")
    (project.kb / "_placeholders.yml").write_text(PLACEHOLDERS, encoding="utf-8")
    for name in FAQ_FILES:
        project.write_faq(name, examples[f"faq/{name}"])
    project.conversation.write_text(
        nlu_text({k: v for k, v in examples.items() if not k.startswith("faq/")}),
        encoding="utf-8",
    )
    project.rebuild()
    project.test_set.write_text(nlu_text(TEST_SET), encoding="utf-8")
    return project


@pytest.fixture
def project(tmp_path: Path) -> TinyProject:
    """A fresh tiny project (no model)."""
    return make_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def rasa_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Rasa's training cache in a temporary folder, not the user's ~/.rasa."""
    path = tmp_path_factory.mktemp("rasa-cache")
    old = os.environ.get("RASA_CACHE_DIRECTORY")
    os.environ["RASA_CACHE_DIRECTORY"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RASA_CACHE_DIRECTORY", None)
    else:
        os.environ["RASA_CACHE_DIRECTORY"] = old


@dataclass(frozen=True)
class Trained:
    """A tiny project with a good model and a deliberately bad one."""

    project: TinyProject
    good: Path
    bad: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, rasa_cache: Path) -> Trained:
    """Trains, once per session: a good model (all data, 40 epochs) through the
    CLI, and a bad one (two examples per label, one epoch)."""
    from walletbot.cli import main
    from walletbot.trainer.train import train

    project = make_project(tmp_path_factory.mktemp("trained") / "proj")
    args = ["train", "--config", str(project.config), "--domain", str(project.domain),
            "--data", str(project.data), "--kb", str(project.kb),
            "--faq-nlu", str(project.faq_nlu), "--models-dir", str(project.models)]
    assert main(args) == 0
    (good,) = project.models.glob("walletbot-*.tar.gz")

    poor = make_project(
        tmp_path_factory.mktemp("poor") / "proj", epochs=1,
        examples={label: texts[:2] for label, texts in EXAMPLES.items()},
    )
    bad = train(config=poor.config, domain=poor.domain, data=poor.data,
                models_dir=tmp_path_factory.mktemp("bad-models")).model
    return Trained(project=project, good=good, bad=bad)

"""Turns the knowledge base into Rasa retrieval-intent NLU data and responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import yaml

from walletbot.faq.kb import FaqEntry, load_knowledge_base, load_placeholders, render_answer

HEADER = (
    "# GENERATED FILE - DO NOT EDIT.\n"
    "# Built from data/faq/*.yml by `walletbot faq build`; edit the knowledge base\n"
    "# and rebuild instead.\n"
)


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, the form Rasa's examples use."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def render(entries: List[FaqEntry], placeholders: Dict[str, str]) -> str:
    """The generated file's text; the same input always gives the same bytes."""
    document: Dict[str, Any] = {
        "version": "3.1",
        "nlu": [
            {
                "intent": entry.retrieval_intent,
                "examples": "".join(f"- {q}\n" for q in entry.questions),
            }
            for entry in entries
        ],
        "responses": {
            entry.response_name: [{"text": render_answer(entry, placeholders)}]
            for entry in entries
        },
    }
    body = yaml.dump(
        document,
        Dumper=_LiteralDumper,
        allow_unicode=True,
        sort_keys=False,
        width=10_000,
    )
    return HEADER + body


def build(*, kb_dir: Path, out_path: Path) -> bool:
    """Writes the generated file; returns True if its content changed."""
    text = render(load_knowledge_base(kb_dir=kb_dir), load_placeholders(kb_dir=kb_dir))
    if out_path.exists() and out_path.read_text(encoding="utf-8") == text:
        return False
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    return True


def is_up_to_date(*, kb_dir: Path, out_path: Path) -> bool:
    """Whether ``out_path`` holds exactly what ``build`` would write."""
    text = render(load_knowledge_base(kb_dir=kb_dir), load_placeholders(kb_dir=kb_dir))
    return out_path.exists() and out_path.read_text(encoding="utf-8") == text

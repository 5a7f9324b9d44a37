"""Evaluation reports: Markdown, HTML and a confusion-matrix PNG under ``reports/``.

A report is built once as a list of blocks and rendered to both formats, so
the Markdown and the HTML always say the same thing.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from walletbot.trainer.evaluation import Scores, confusion, summary

Cell = Union[str, int, float]
MAX_LISTED = 200


@dataclass
class Document:
    """Headings, paragraphs, lists, tables and images, in order."""

    blocks: List[Tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        self.blocks.append(("table", list(headers), [list(r) for r in rows]))

    def image(self, alt: str, src: str) -> None:
        self.blocks.append(("img", alt, src))


def _cell(value: Cell) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_markdown(doc: Document) -> str:
    """The document as GitHub-flavoured Markdown."""
    out: List[str] = []
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"{'#' * block[1]} {block[2]}\n")
        elif kind == "p":
            out.append(f"{block[1]}\n")
        elif kind == "ul":
            out.append("".join(f"- {item}\n" for item in block[1]))
        elif kind == "table":
            headers, rows = block[1], block[2]
            esc = lambda v: _cell(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
            out.append("\n".join(lines) + "\n")
        elif kind == "img":
            out.append(f"![{block[1]}]({block[2]})\n")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;"
    "max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em}"
    "th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "img{max-width:100%}"
)


def render_html(doc: Document, *, title: str) -> str:
    """The document as a standalone HTML page."""
    out = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for block in doc.blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            body = "".join(
                "<tr>" + "".join(
                    f'<td class="n">{_cell(v)}</td>' if isinstance(v, (int, float))
                    else f"<td>{html.escape(_cell(v))}</td>"
                    for v in row
                ) + "</tr>"
                for row in block[2]
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            out.append(f'<img alt="{html.escape(block[1])}" src="{html.escape(block[2])}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def plot_confusion(scores: Scores, *, path: Path) -> Path:
    """Saves the confusion matrix (gold rows, classified columns) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels, matrix = confusion(scores.predictions)
    size = max(4.0, 0.32 * len(labels) + 2.5)
    fig = Figure(figsize=(size, size), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)))
    ax.set_yticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("classified")
    ax.set_ylabel("gold")
    peak = max((max(row) for row in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                        color="white" if count > peak / 2 else "black")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(str(path))
    return path


def confused_pairs(scores: Scores, limit: int = 10) -> List[Tuple[str, str, int]]:
    """The most frequent ``(gold, classified, count)`` mistakes."""
    labels, matrix = confusion(scores.predictions)
    pairs = [
        (labels[i], labels[j], matrix[i][j])
        for i in range(len(labels)) for j in range(len(labels))
        if i != j and matrix[i][j]
    ]
    return sorted(pairs, key=lambda t: (-t[2], t[0], t[1]))[:limit]


def per_label_rows(scores: Scores) -> List[List[Cell]]:
    """``[label, precision, recall, F1, support]``, weakest F1 first."""
    rows = [
        [label, v["precision"], v["recall"], v["f1"], int(v["support"])]
        for label, v in scores.per_label.items()
    ]
    return sorted(rows, key=lambda r: (r[3], r[0]))


def build_document(
    scores: Scores, *, title: str, context: Sequence[str], image: str = "confusion.png"
) -> Document:
    """The report: summary, per-label scores, confusion, mistakes, fallbacks."""
    doc = Document()
    doc.heading(title, 1)
    doc.bullets(list(context) + [f"written {time.strftime('%Y-%m-%d %H:%M')}"])
    figures = summary(scores)
    n_fell = sum(p.fell_back for p in scores.predictions)
    doc.heading("Summary")
    doc.table(
        ["metric", "value"],
        [
            ["messages scored", int(figures["examples"])],
            ["accuracy", figures["accuracy"]],
            ["macro-F1", figures["macro_f1"]],
            ["accuracy after fallback (a fallback counts as wrong)",
             figures["accuracy_after_fallback"]],
            ["fallback rate", f"{figures['fallback_rate']:.1%} ({n_fell} messages)"],
        ],
    )
    doc.heading("Per intent (weakest first)")
    doc.table(["intent", "precision", "recall", "F1", "support"], per_label_rows(scores))
    doc.heading("Confusion matrix")
    doc.image("confusion matrix", image)
    pairs = confused_pairs(scores)
    if pairs:
        doc.paragraph("Most frequent confusions:")
        doc.table(["gold", "classified as", "count"], [list(p) for p in pairs])
    errors = sorted(scores.errors(), key=lambda p: (p.gold, -p.confidence))
    doc.heading(f"Misclassified messages ({len(errors)})")
    if errors:
        doc.table(
            ["message", "gold", "classified", "confidence"],
            [[p.text, p.gold, p.classified, p.confidence] for p in errors[:MAX_LISTED]],
        )
    else:
        doc.paragraph("None.")
    fell = sorted((p for p in scores.predictions if p.fell_back), key=lambda p: p.confidence)
    doc.heading(f"Fallbacks ({len(fell)})")
    if fell:
        doc.table(
            ["message", "gold", "best guess", "confidence"],
            [[p.text, p.gold, p.classified, p.confidence] for p in fell[:MAX_LISTED]],
        )
    else:
        doc.paragraph("None.")
    return doc


def write_report(
    scores: Scores,
    *,
    out_dir: Path,
    title: str,
    context: Sequence[str],
    formats: Sequence[str] = ("md", "html"),
) -> Dict[str, Path]:
    """Writes the report files into ``out_dir``; returns them by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {"png": plot_confusion(scores, path=out_dir / "confusion.png")}
    doc = build_document(scores, title=title, context=context)
    if "md" in formats:
        written["md"] = out_dir / "report.md"
        written["md"].write_text(render_markdown(doc), encoding="utf-8")
    if "html" in formats:
        written["html"] = out_dir / "report.html"
        written["html"].write_text(render_html(doc, title=title), encoding="utf-8")
    data = {
        "title": title,
        "summary": summary(scores),
        "per_label": scores.per_label,
        "errors": [
            {"text": p.text, "gold": p.gold, "classified": p.classified,
             "confidence": round(p.confidence, 4), "fell_back": p.fell_back}
            for p in scores.errors()
        ],
    }
    written["json"] = out_dir / "scores.json"
    written["json"].write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return written

"""train, evaluate, compare, promote on tiny models trained in seconds (``slow``: they train)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from walletbot.cli import main
from walletbot.trainer import models as model_files
from walletbot.trainer.promote import sha256

from .conftest import Trained, TinyProject

pytestmark = pytest.mark.slow


def _train_args(project: TinyProject, *extra: str):
    return ["train", "--config", str(project.config), "--domain", str(project.domain),
            "--data", str(project.data), "--kb", str(project.kb),
            "--faq-nlu", str(project.faq_nlu), "--models-dir", str(project.models), *extra]


def test_train_names_the_model_by_fingerprint_and_skips_unchanged_data(trained: Trained, capsys):
    assert re.fullmatch(r"walletbot-\d{8}-\d{6}-[0-9a-f]{10}\.tar\.gz", trained.good.name)
    sidecar = json.loads(model_files.sidecar_path(trained.good).read_text(encoding="utf-8"))
    assert sidecar["fingerprint"]["combined"].startswith(model_files.fingerprint_of_name(trained.good))
    assert sidecar["seconds"] > 0
    assert main(_train_args(trained.project)) == 0
    assert "was already trained from exactly these inputs" in capsys.readouterr().out
    assert list(trained.project.models.glob("*.tar.gz")) == [trained.good]


def test_finetune_when_only_data_changed(trained: Trained, tmp_path, capsys):
    project = TinyProject(tmp_path / "proj")
    shutil.copytree(trained.project.root, project.root)
    base = project.models / trained.good.name
    assert main(["faq", "add", "--intent", "faq/register", "-q", "注册要多长时间",
                 *project.data_args()]) == 0
    assert main(_train_args(project, "--finetune", "--epoch-fraction", "0.5")) == 0
    out = capsys.readouterr().out
    assert re.search(r"trained .* in \d+\.\d s, fine-tuned from " + re.escape(base.name), out)
    new = model_files.latest_candidate(project.models)
    assert new != base
    assert json.loads(model_files.sidecar_path(new).read_text())["finetuned_from"] == base.name

    # A changed pipeline cannot be fine-tuned: refused before any training.
    project.config.write_text(project.config.read_text().replace("max_ngram: 3", "max_ngram: 4"))
    assert main(_train_args(project, "--finetune", str(base))) == 2
    assert "config changed since it was trained" in capsys.readouterr().err


def test_evaluate_writes_a_report(trained: Trained, tmp_path, capsys):
    reports = tmp_path / "reports"
    assert main(["evaluate", "--model", str(trained.good), *trained.project.test_args(),
                 "--reports", str(reports)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"accuracy 0\.\d{3}|accuracy 1\.000", out)
    (folder,) = reports.iterdir()
    assert folder.name.endswith(model_files.stem(trained.good))
    assert {p.name for p in folder.iterdir()} == {
        "report.md", "report.html", "confusion.png", "scores.json"
    }
    assert (folder / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    report = (folder / "report.md").read_text(encoding="utf-8")
    for part in ("## Summary", "| accuracy |", "| macro-F1 |", "fallback rate",
                 "## Per intent (weakest first)", "| faq/register |", "![confusion matrix]",
                 "## Misclassified messages", "## Fallbacks", "16 messages scored"):
        assert part in report, part
    scores = json.loads((folder / "scores.json").read_text(encoding="utf-8"))
    assert scores["summary"]["accuracy"] >= 0.75
    assert "<table>" in (folder / "report.html").read_text(encoding="utf-8")


def _compare(trained: Trained, candidate: Path, current: Path) -> int:
    return main(["compare", "--candidate", str(candidate), "--current", str(current),
                 *trained.project.test_args()])


def test_compare_refuses_a_worse_model_and_accepts_a_better_one(trained: Trained, capsys):
    assert _compare(trained, trained.bad, trained.good) == 1
    out = capsys.readouterr().out
    assert "candidate is WORSE: accuracy" in out
    assert re.search(r"accuracy\s+\d\.\d{3}\s+\d\.\d{3}\s+-\d\.\d{3}\s+WORSE", out)
    assert _compare(trained, trained.good, trained.bad) == 0
    assert "candidate is not worse" in capsys.readouterr().out


def test_promote_only_a_model_that_is_not_worse(trained: Trained, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    served = models / "walletbot.tar.gz"
    shutil.copyfile(trained.good, served)
    args = ["--models-dir", str(models), *trained.project.test_args()]

    assert main(["promote", str(trained.bad), *args]) == 1
    out = capsys.readouterr().out
    assert "refused:" in out and "WORSE" in out
    assert sha256(served) == sha256(trained.good)

    shutil.copyfile(trained.bad, served)
    assert main(["promote", str(trained.good), *args]) == 0
    assert "promoted " + trained.good.name in capsys.readouterr().out
    assert sha256(served) == sha256(trained.good)

    assert main(["rollback", "--models-dir", str(models)]) == 0
    assert sha256(served) == sha256(trained.bad)


def test_cross_validation(trained: Trained, tmp_path, capsys):
    reports = tmp_path / "reports"
    assert main(["evaluate", "--cv", "2", "--config", str(trained.project.config),
                 "--train-data", str(trained.project.nlu), "--reports", str(reports),
                 "--no-progress", "--format", "md"]) == 0
    (folder,) = reports.iterdir()
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "2-fold cross-validation" in report and "| messages scored | 48 |" in report
    assert not (folder / "report.html").exists()

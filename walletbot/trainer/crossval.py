"""k-fold cross-validation of the NLU pipeline on the training data.

Each fold trains an NLU-only model on the other folds (stratified by full
label, ``faq/<name>`` included) and scores the held-out fold; the report
covers the predictions of all folds together.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any, List, Optional

from walletbot.trainer import evaluation as ev


def _full_label(message: Any) -> str:
    return message.get("intent_response_key") or message.get("intent")


def cross_validate(
    *,
    config: Path,
    data: Path,
    folds: int = 5,
    seed: int = 1,
    work_dir: Optional[Path] = None,
    progress: bool = True,
) -> ev.Scores:
    """Scores the pipeline of ``config`` by ``folds``-fold cross-validation on ``data``.

    Args:
        config: Rasa config whose pipeline is trained.
        data: NLU training data (file or folder; responses are kept).
        folds: number of folds (at least 2).
        seed: seed of the fold split.
        work_dir: where fold data and models go (a temporary folder if None).
        progress: show a progress bar over the folds.
    """
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    import yaml
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.model_selection import StratifiedKFold

    from walletbot.trainer.console import progress as progress_bar

    ev.quiet_rasa_logs()
    nlu = load_data(str(data))
    messages = list(nlu.intent_examples)
    labels = [_full_label(m) for m in messages]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predictions: List[ev.Prediction] = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = Path(tmp)
        splits = list(splitter.split(messages, labels))
        for n, (train_idx, test_idx) in enumerate(
            progress_bar(splits, desc="folds", enabled=progress, unit="fold")
        ):
            fold_dir = root / f"fold{n}"
            fold_dir.mkdir()
            train = TrainingData(training_examples=[messages[i] for i in train_idx])
            (fold_dir / "nlu.yml").write_text(train.nlu_as_yaml(), encoding="utf-8")
            if nlu.responses:
                (fold_dir / "responses.yml").write_text(
                    yaml.safe_dump({"version": "3.1", "responses": nlu.responses},
                                   allow_unicode=True),
                    encoding="utf-8",
                )
            model = train_nlu(
                config=str(config), nlu_data=str(fold_dir), output=str(root / "models"),
                fixed_model_name=f"fold{n}",
            )
            if not model:
                raise RuntimeError(f"training fold {n} failed; see the log above")
            agent = Agent.load(model)
            held_out = [
                ev.LabelledExample(text=messages[i].get("text"), label=labels[i])
                for i in test_idx
            ]
            predictions += asyncio.run(ev.predict_all(agent, held_out))
    return ev.score(predictions)

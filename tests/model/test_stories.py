"""Dialogue rules, end to end, through `rasa test core`."""

import subprocess

import pytest

from walletbot.settings import PROJECT_ROOT

from tests.conftest import RASA

pytestmark = pytest.mark.slow


def test_stories_pass_without_prediction_errors(trained_model, tmp_path, project_env):
    result = subprocess.run(
        [
            RASA, "test", "core",
            "--model", str(trained_model),
            "--stories", "tests/test_stories.yml",
            "--fail-on-prediction-errors",
            "--out", str(tmp_path / "results"),
        ],
        cwd=PROJECT_ROOT,
        env=project_env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = tmp_path / "results" / "failed_test_stories.yml"
    assert not failed.exists() or "story:" not in failed.read_text(encoding="utf-8")

"""What counts as training data in a model's fingerprint."""

from __future__ import annotations

from walletbot.trainer.fingerprint import digest_files, fingerprint
from walletbot.settings import PROJECT_ROOT


def _tree(root, canned="a", nlu="b"):
    (root / "desk").mkdir(parents=True, exist_ok=True)
    (root / "nlu").mkdir(parents=True, exist_ok=True)
    (root / "desk" / "canned.yml").write_text(canned, encoding="utf-8")
    (root / "nlu" / "x.yml").write_text(nlu, encoding="utf-8")
    return root


def test_canned_replies_do_not_change_the_data_fingerprint_but_training_data_does(tmp_path):
    data = _tree(tmp_path / "data")
    config, domain = PROJECT_ROOT / "config.yml", PROJECT_ROOT / "domain.yml"
    before = fingerprint(config=config, domain=domain, data=data)
    _tree(data, canned="edited")
    assert fingerprint(config=config, domain=domain, data=data).data == before.data
    _tree(data, canned="edited", nlu="edited")
    assert fingerprint(config=config, domain=domain, data=data).data != before.data


def test_skip_applies_only_to_top_level_folders(tmp_path):
    data = _tree(tmp_path / "data")
    (data / "nlu" / "desk").mkdir()
    (data / "nlu" / "desk" / "y.yml").write_text("1", encoding="utf-8")
    before = digest_files([data], skip=("desk",))
    (data / "nlu" / "desk" / "y.yml").write_text("2", encoding="utf-8")
    assert digest_files([data], skip=("desk",)) != before

from walletbot.cli import main


def test_faq_build_and_check(tmp_path, capsys):
    kb = tmp_path / "faq"
    kb.mkdir()
    (kb / "register.yml").write_text(
        "intent: register\nanswer: 下载APP注册\nquestions: [怎么注册]\n", encoding="utf-8"
    )
    out = tmp_path / "faq.yml"
    assert main(["faq", "build", "--kb", str(kb), "--out", str(out), "--check"]) == 1
    assert main(["faq", "build", "--kb", str(kb), "--out", str(out)]) == 0
    assert main(["faq", "build", "--kb", str(kb), "--out", str(out), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_faq_build_reports_kb_errors_with_the_file(tmp_path, capsys):
    kb = tmp_path / "faq"
    kb.mkdir()
    (kb / "register.yml").write_text("intent: register\nanswer: ''\n", encoding="utf-8")
    assert main(["faq", "build", "--kb", str(kb), "--out", str(tmp_path / "o.yml")]) == 2
    assert "register.yml" in capsys.readouterr().err

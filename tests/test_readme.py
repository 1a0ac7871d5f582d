"""The README's library quick start runs as written."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_quickstart_runs(tmp_path, monkeypatch, capsys):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Library quick start"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("cfg = DefragConfig()", "cfg = DefragConfig(); cfg.optim.encoder_epochs = 3"),
                 "README", "exec"), {})
    out = capsys.readouterr().out
    assert "Alpha:" in out and "Confidence:" in out and "Latency:" in out
    assert (tmp_path / "model.pt").exists()

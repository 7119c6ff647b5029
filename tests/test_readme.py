"""The README stays true: its Python quickstart runs verbatim, and so do its CLI quickstart lines."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from support import invoke_cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str, lang: str) -> str:
    text = README.read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert found, f"no ```{lang} block under '## {heading}' in README.md"
    return found.group(1)


def _cli_lines() -> list[list[str]]:
    lines = []
    for raw in _block("Quickstart (CLI)", "bash").splitlines():
        words = shlex.split(raw, comments=True)
        if words:
            assert words[0] == "mloop", raw
            lines.append(words[1:])
    return lines


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh folder with no MLOOP_HOME: settings come from the defaults, as for a new user."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.delenv("MLOOP_HOME")
    (tmp_path / ".mloop").rmdir()  # the autouse fixture's home would be found walking up
    monkeypatch.chdir(folder)
    return folder


def _mloop(*args: str):
    """The CLI in this process (fast); the console script itself is tested in tests/cli/."""
    import mloop.config

    mloop.config.reset()
    return invoke_cli(*args)


def test_readme_quickstart_python_and_cli(project):
    code = _block("Quickstart (Python)", "python")
    script = project / "quickstart.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0].split()
    assert first[0] in ("0.1", "1.0") and 0.5 < float(first[1]) <= 1.0
    assert (project / ".mloop" / "mloop.db").is_file()

    runs = json.loads(_mloop("runs", "list", "--experiment", "quickstart", "--order-by", "metrics.auc DESC",
                             "--json").stdout)
    assert len(runs) == 2
    ids = {"RUN_ID": runs[0]["id"], "RUN_ID_1": runs[0]["id"], "RUN_ID_2": runs[1]["id"]}
    lines = _cli_lines()
    assert ["init"] in lines and any(line[:2] == ["runs", "list"] for line in lines)
    for words in lines:
        args = [ids.get(w, re.sub(r"RUN_ID(_\d)?", lambda m: ids[m.group(0)], w)) for w in words]
        result = _mloop(*args)
        assert result.returncode == 0, f"mloop {' '.join(words)}: {result.stderr}"
        if words[:2] == ["runs", "list"]:
            assert runs[0]["id"] in result.stdout and runs[1]["id"] in result.stdout
        if words[:2] == ["experiments", "list"]:
            assert "quickstart" in result.stdout
        if words[:2] == ["runs", "show"] and "--json" in words:
            assert json.loads(result.stdout)["id"] == runs[0]["id"]


def test_readme_names_the_two_setup_commands_and_the_settings():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    for env in ("MLOOP_HOME", "MLOOP_TRACKING_URI", "MLOOP_ARTIFACT_URI", "MLOOP_EXECUTOR", "MLOOP_ONLINE_STORE"):
        assert env in text
    makefile = (README.parent / "Makefile").read_text()
    for target in ("demo:", "test:", "lint:", "bench:"):
        assert target in makefile
    assert (README.parent / ".ci" / "run").stat().st_mode & 0o111, ".ci/run must be executable"

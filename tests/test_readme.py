"""The README stays true: its Python examples run verbatim, and so do its CLI lines (the registry,
data and validation lines with the exit codes they are marked with, `# exits 1`; the serving section's
first server on port 0 with its curl lines sent through httpx; the other `mloop serve` lines checked
to parse, flags and values, through `--help`)."""

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


# -- the sections after the quickstart: registry, data, validation, serving ------------------------
def _blocks(heading: str, lang: str) -> list[str]:
    text = README.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(rf"```{lang}\n(.*?)```", section, re.S)
    assert found, f"no ```{lang} block under '## {heading}' in README.md"
    return found


def _commands(block: str) -> list[str]:
    """The shell commands of a block: a command runs on over a trailing backslash or an open quote."""
    commands, pending = [], ""
    for raw in block.splitlines():
        pending = f"{pending}\n{raw}" if pending else raw
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            commands.append(pending)
        pending = ""
    assert not pending, f"unterminated command in README.md: {pending!r}"
    return commands


def _expected_exit(command: str) -> int:
    found = re.search(r"#\s*exits (\d)", command)
    return int(found.group(1)) if found else 0


GIT_ENV = {"GIT_AUTHOR_NAME": "readme", "GIT_AUTHOR_EMAIL": "readme@example.com",
           "GIT_COMMITTER_NAME": "readme", "GIT_COMMITTER_EMAIL": "readme@example.com"}


def _run_commands(block: str, project: Path, subst: dict[str, str] | None = None) -> dict[str, object]:
    """Run each `mloop` (in this process) and `git` line of a block; `a && b` runs both. Returns the
    last result of each mloop command line, keyed by the line."""
    import os

    results = {}
    for command in _commands(block):
        words = [(subst or {}).get(w, w) for w in shlex.split(command, comments=True)]
        expected = _expected_exit(command)
        parts, current = [], []
        for w in words:
            if w == "&&":
                parts.append(current)
                current = []
            else:
                current.append(w)
        parts.append(current)
        for part in parts:
            if part[0] == "git":
                proc = subprocess.run(part, cwd=project, capture_output=True, text=True,
                                      env={**os.environ, **GIT_ENV}, timeout=60)
                assert proc.returncode == 0, f"{command}: {proc.stderr}"
                continue
            assert part[0] == "mloop", command
            result = _mloop(*part[1:])
            assert result.returncode == expected, (
                f"README line `{command}` exited {result.returncode}, expected {expected}: {result.stderr}")
            results[command] = result
    return results


def _python(heading: str, project: Path) -> list[str]:
    script = project / f"readme_{heading.split()[-1].lower()}.py"
    script.write_text(_blocks(heading, "python")[0])
    proc = subprocess.run([sys.executable, str(script)], cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"README '{heading}' Python example failed:\n{proc.stderr}"
    return proc.stdout.splitlines()


def _check_flags(command: str) -> None:
    """A command that needs a long-lived server: its flags and values must parse (`--help` is eager,
    so an unknown flag or a bad value still fails)."""
    words = shlex.split(command, comments=True)
    while "=" in words[0] and not words[0].startswith("-"):  # VAR=value prefixes
        words.pop(0)
    assert words[0] == "mloop", command
    result = _mloop(*words[1:], "--help")
    assert result.returncode == 0, f"README line `{command}`: {result.stderr or result.stdout}"


def _curl(command: str, base: str) -> tuple[str, dict, str]:
    words = shlex.split(command, comments=True)
    assert words[0] == "curl", command
    url, headers, body, rest = None, {}, None, iter(words[1:])
    for w in rest:
        if w == "-H":
            key, _, value = next(rest).partition(":")
            headers[key.strip()] = value.strip()
        elif w == "-d":
            body = next(rest)
        elif not w.startswith("-"):
            url = w
    assert url and body is not None, command
    return url.replace("http://127.0.0.1:PORT", base), headers, body


def _start_server(command: str, project: Path) -> tuple[subprocess.Popen, str]:
    import selectors
    import time

    words = shlex.split(command, comments=True)
    assert words[:2] == ["mloop", "serve"] and "--port" in words and words[words.index("--port") + 1] == "0"
    proc = subprocess.Popen([sys.executable, "-m", "mloop", *words[1:]], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline, seen = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            continue
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError(f"`{command}` printed no 'listening on' line: {''.join(seen)}")


def test_readme_registry_data_validation_and_serving_sections_run(project):
    import httpx
    import pandas as pd

    # Model registry: the Python example, then its CLI lines.
    out = _python("Model registry", project)
    assert 0.5 < float(out[0]) <= 1.0 and out[-1] == "True"
    results = _run_commands(_blocks("Model registry", "bash")[0], project)
    assert any("churn" in r.stdout and "champion" in r.stdout for r in results.values())
    scored = pd.read_parquet(project / "scored.parquet")
    assert len(scored) == 200 and {"tenure", "prediction", "proba_0", "proba_1"} <= set(scored.columns)
    history = next(r for c, r in results.items() if "models history" in c)
    assert "champion" in history.stdout and "challenger" in history.stdout

    # Data versioning: in a git repository, pointers committed.
    subprocess.run(["git", "init", "-q", str(project)], check=True, timeout=60)
    out = _python("Data versioning", project)
    assert out == ["datasets:/churn-train@1 datasets:/churn-train@2", "99", "tenure"]
    remote = project.parent / "remote"
    _run_commands(_blocks("Data versioning", "bash")[0], project, {"/mnt/shared/mloop-data": str(remote)})
    assert pd.read_parquet(project / "old" / "train.parquet")["tenure"].max() == 99
    assert pd.read_parquet(project / "data" / "train.parquet")["tenure"].max() == 111
    assert (remote).is_dir() and any(remote.rglob("*"))
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True).stdout
    assert "data/train.parquet.mloop" in tracked and "data/train.parquet\n" not in tracked

    # Data validation: the failing lines are marked `# exits 1` and must exit 1.
    out = _python("Data validation", project)
    assert out[0] == "True" and out[1].startswith("False") and "no_unseen_categories:plan" in out[1]
    _run_commands(_blocks("Data validation", "bash")[0], project)
    assert (project / "suite.yaml").is_file() and (project / "report.html").is_file()

    # Serving: the long-lived server once (port 0), each curl line through httpx; the other serve
    # lines must parse; `mloop build` runs.
    first, more = _blocks("Serving", "bash")
    commands = _commands(first)
    proc, base = _start_server(commands[0], project)
    try:
        answers = {}
        for command in commands[1:]:
            url, headers, body = _curl(command, base)
            response = httpx.post(url, content=body, headers=headers, timeout=30)
            assert response.status_code in (200, 202), f"{command}: {response.status_code} {response.text}"
            answers[url.rsplit("/", 1)[-1]] = response.json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert answers["predict"]["request_id"] == "req-1" and answers["predict"]["model"] == "churn"
    assert answers["predict"]["predictions"] == [int(x) for x in answers["infer"]["outputs"][0]["data"]]
    assert answers["feedback"] == {"accepted": 1}
    for command in _commands(more):
        if shlex.split(command)[:2] == ["mloop", "build"]:
            _run_commands(command, project)
        else:
            _check_flags(command)
    assert (project / "bundle" / "Dockerfile").is_file()

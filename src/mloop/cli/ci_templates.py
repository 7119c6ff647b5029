"""CI workflow templates written by `mloop init --ci github`."""

from __future__ import annotations

from pathlib import Path

from mloop.errors import Conflict, InvalidInput

GITHUB = """\
# Written by `mloop init --ci github`: runs `mloop ci` on every push and pull request.
# Add the repository secrets MLOOP_TRACKING_URI (e.g. postgresql+psycopg://user:pass@host/db) and
# MLOOP_ARTIFACT_URI (e.g. s3://bucket/mloop) so CI sees the team's champion and artifacts.
name: mloop

on:
  push:
  pull_request:

jobs:
  ci:
    runs-on: ubuntu-latest
    env:
      MLOOP_TRACKING_URI: ${{ secrets.MLOOP_TRACKING_URI }}
      MLOOP_ARTIFACT_URI: ${{ secrets.MLOOP_ARTIFACT_URI }}
      AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
      AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
    steps:
      - name: Check out
        uses: actions/checkout@v4
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - name: Install
        run: |
          python -m pip install --upgrade pip
          if [ -f pyproject.toml ]; then pip install -e .; fi
          if [ -f requirements.txt ]; then pip install -r requirements.txt; fi
          pip install 'mloop[postgres,s3]'
      - name: Validate, train, gate (mloop ci)
        run: mloop ci --pipeline pipeline.py
"""

TEMPLATES = {"github": (".github/workflows/mloop.yml", GITHUB)}


def write(kind: str, path: str | Path = ".") -> Path:
    """Write the workflow for `kind` (github) under the project folder; returns its path."""
    if kind not in TEMPLATES:
        raise InvalidInput(f"unknown CI kind {kind!r}; known: {', '.join(TEMPLATES)}")
    rel, text = TEMPLATES[kind]
    dest = Path(path) / rel
    if dest.exists():
        if dest.read_text() == text:
            return dest
        raise Conflict(f"{dest} already exists; remove it to write a fresh one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    return dest


__all__ = ["TEMPLATES", "write"]

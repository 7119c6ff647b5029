"""Run every benchmark (`benchmarks/*.py` except `_`-prefixed files and this one), passing options
through (`--quick`, `--results PATH`); `make bench` calls this. Exit status 1 if any benchmark failed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != Path(__file__).name)


def main(argv: list[str]) -> int:
    failed = []
    for script in scripts():
        print(f"== {script.name} {' '.join(argv)}", flush=True)
        if subprocess.run([sys.executable, str(script), *argv]).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

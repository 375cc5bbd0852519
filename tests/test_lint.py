"""The sources pass the linter (`make lint`): part of `make test`, so that CI catches what `make lint`
would (a lint error once landed with every test green)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("edgemoe", "golden", "codegen", "host", "sim", "boards", "tests")   # the Makefile's lint target


def test_ruff_is_clean():
    makefile = (REPO / "Makefile").read_text()
    assert "ruff check " + " ".join(SOURCES) in makefile, "keep SOURCES in step with the Makefile's lint target"
    r = subprocess.run([sys.executable, "-m", "ruff", "check", *SOURCES], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]

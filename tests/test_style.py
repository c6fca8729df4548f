"""Code style gates run by the test suite (configured in pyproject.toml): ruff over the
Python code, snakefmt over the Snakefile and rules."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*cmd):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean():
    proc = run(str(BIN / "ruff"), "check", "pathgen", "pathgen_testkit", "workflow_scripts", "bench", "tests",
               "slurm")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_snakefmt_is_clean():
    proc = run(str(BIN / "snakefmt"), "--check", "Snakefile", "rules")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

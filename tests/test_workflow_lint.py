"""Snakemake's own linter finds nothing in the workflow (rules declare log/conda/threads...)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_snakemake_lint_is_clean(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--directory", str(tmp_path),
                           "-s", str(REPO / "Snakefile"), "--configfile", str(REPO / "config.yaml")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in out, out[-3000:]

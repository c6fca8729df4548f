"""rules/agents.smk: off by default; when enabled, build-data -> train (one job per agent) is
wired after captioning, lint-clean, with the merged model folders as final targets."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _snakemake(tmp_path, *args, enabled=True):
    extra = tmp_path / "agents.yaml"
    extra.write_text(f"agents:\n  enabled: {str(enabled).lower()}\n")
    cmd = [sys.executable, "-m", "snakemake", *args, "--directory", str(tmp_path), "-s",
           str(REPO / "Snakefile"), "--configfile", str(REPO / "config.yaml"), str(extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


def _job_counts(out: str) -> dict[str, str]:
    """The dry run's `rule  count` table."""
    return {p[0]: p[1] for p in (line.split() for line in out.splitlines()) if len(p) == 2}


def test_agents_rules_are_off_by_default_and_wired_when_enabled(tmp_path):
    rc, out = _snakemake(tmp_path, "-n", "--quiet", "rules", enabled=False)
    assert rc == 0 and "caption" in _job_counts(out), out[-2000:]
    assert not [r for r in _job_counts(out) if r.startswith("agents_")]
    rc, out = _snakemake(tmp_path, "-n", "--quiet", "rules")
    assert rc == 0, out[-3000:]
    counts = _job_counts(out)
    assert counts.get("agents_build_data") == "1" and counts.get("agents_train") == "2"


def test_agents_rules_lint_clean(tmp_path):
    rc, out = _snakemake(tmp_path, "--lint")
    assert rc == 0 and "Congratulations" in out, out[-3000:]

"""The README stays true: two commands, config reference in sync with the schema."""

import re
from pathlib import Path

from pathgen.config.reference import readme_with_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_config_reference_is_current():
    text = README.read_text()
    assert readme_with_reference(text) == text, (
        "README configuration reference is stale: run "
        "`.venv/bin/python -m pathgen.config.reference --update-readme README.md`")


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.S)
    commands = [line for b in blocks for line in b.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "snakemake --cores" in commands[0] and "pip install" in commands[0]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1].strip() in ci

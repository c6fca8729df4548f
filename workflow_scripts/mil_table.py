"""Snakemake script of rule `mil_table` (logic: pathgen.mil.results_table; no torch)."""

from pathlib import Path

from pathgen.logs import setup_logging
from pathgen.mil.results_table import write_table

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
write_table([Path(p) for p in sm.input.metrics], Path(sm.output.csv), Path(sm.output.md))

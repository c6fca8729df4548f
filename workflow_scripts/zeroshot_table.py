"""Snakemake script of rule `zeroshot_table` (logic: pathgen.zeroshot.report; no torch)."""

from pathgen.logs import setup_logging
from pathgen.zeroshot.report import write_table

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
write_table(list(sm.input), sm.output.csv, sm.output.md)

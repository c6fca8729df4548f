"""Snakemake script for rules zeroshot (one benchmark x model) and zeroshot_table
(logic: pathgen.zeroshot.run.evaluate_benchmark, pathgen.zeroshot.report.write_table)."""

import torch

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.zeroshot.report import write_table
from pathgen.zeroshot.run import evaluate_benchmark

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
if sm.rule == "zeroshot_table":
    write_table(list(sm.input), sm.output.csv, sm.output.md)
else:
    evaluate_benchmark(validate_config(sm.config), sm.wildcards.benchmark, sm.wildcards.model)

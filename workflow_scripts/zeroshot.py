"""Snakemake script of rule `zeroshot`: one benchmark x model (logic: pathgen.zeroshot.run)."""

import torch

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.zeroshot.run import evaluate_benchmark

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
evaluate_benchmark(validate_config(sm.config), sm.wildcards.benchmark, sm.wildcards.model)

"""Snakemake script of rule `zeroshot_export`: one benchmark in CLIP_benchmark's layout
(logic: pathgen.zeroshot.export)."""

import torch

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.zeroshot.export import export_benchmark
from pathgen.zeroshot.layout import model_names

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
cfg = validate_config(sm.config)
export_benchmark(cfg, sm.wildcards.benchmark, model_names(cfg))

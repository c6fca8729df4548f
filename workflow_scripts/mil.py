"""Snakemake script of rule `mil`: one task x encoder x model (logic: pathgen.mil.api)."""

import torch

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.mil import api
from pathgen.slide_state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
torch.set_num_threads(max(1, sm.threads))
# Slides whose features finished (chunk outcomes); None = a folder of the user's own features.
chunks = list(sm.input.features)
api.task_benchmark(validate_config(sm.config), sm.wildcards.task, sm.wildcards.encoder,
                   sm.wildcards.model, available=set(slides_with_status(chunks)) if chunks else None)

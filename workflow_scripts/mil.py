"""Snakemake script of rule `mil`: one task x encoder x model (logic: pathgen.mil.api.run_task).

Everything the job needs comes from the rule (params: the task's and evaluation.mil's settings,
the feature folder, slide files for heatmaps; input/output: the splits and the run folder), so
it validates only its own sections, not the whole config. On a local run it first claims a free
GPU (pathgen.gpu_slots), before torch."""

from pathlib import Path

from pathgen.gpu_slots import job_gpus
from pathgen.logs import setup_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
with job_gpus(sm, sm.params.settings["device"]):
    import torch

    from pathgen.mil import api
    from pathgen.runner.state import slides_with_status

    torch.set_num_threads(max(1, sm.threads))
    # Slides whose features finished (chunk outcomes); None = a folder of the user's own features.
    chunks = list(sm.input.features)
    api.run_task(sm.wildcards.task, sm.params.task, sm.params.settings, encoder=sm.wildcards.encoder,
                 model=sm.wildcards.model, splits_dir=Path(sm.input.splits).parent,
                 features_dir=Path(sm.params.features_dir), out_dir=Path(sm.output.metrics).parent,
                 available=set(slides_with_status(chunks)) if chunks else None,
                 slide_paths={s: Path(p) for s, p in sm.params.slides.items()})

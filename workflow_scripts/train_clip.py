"""Snakemake script for rule train_clip (logic: pathgen.training.run.train).

The job runs on what the rule passes: params.training (the training section, its rerun
trigger), the default pairs from input, the training folder from output; it validates only
the training section, not the whole config. On a local run it first claims training.gpus free
GPUs (pathgen.gpu_slots), before CUDA starts."""

from pathlib import Path

from pathgen.gpu_slots import job_gpus
from pathgen.logs import setup_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
with job_gpus(sm, sm.params.training["device"], n=sm.params.training["gpus"]):
    from pathgen.config.training import TrainingConfig
    from pathgen.training.run import train

    default_csv = getattr(sm.input, "default_csv", None)  # absent when every stage names its data
    train(TrainingConfig.model_validate(sm.params.training), Path(sm.output.final).parent,
          Path(default_csv) if default_csv else None, threads=sm.threads)

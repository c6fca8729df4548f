"""Snakemake script for rule train_baseline (logic: pathgen.training.run.train, baseline=...).

As train_clip (the same params.training schedule, the same GPU claim), on the baseline's pairs
(input) into its folder (output); only the training section is validated, not the whole config."""

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
          Path(default_csv) if default_csv else None, threads=sm.threads, baseline=sm.wildcards.baseline)

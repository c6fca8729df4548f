"""Snakemake script for rule train_baseline (logic: pathgen.training.run.train, baseline=...)."""

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.training.run import train

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
train(validate_config(sm.config), threads=sm.threads, baseline=sm.wildcards.baseline)

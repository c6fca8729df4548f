"""Snakemake script for rule train_clip (logic: pathgen.training.run.train)."""

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.training.run import train

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
train(validate_config(snakemake.config), threads=snakemake.threads)  # noqa: F821

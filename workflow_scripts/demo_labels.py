"""Snakemake script for rule demo_labels (logic: pathgen.demo.generate.write_labels)."""

from pathgen.config import validate_config
from pathgen.demo.generate import write_labels
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
write_labels(validate_config(snakemake.config), snakemake.output.labels)  # noqa: F821

"""Snakemake script for rule make_demo_slide (logic: pathgen.demo.generate.generate_one)."""

from pathgen.config import validate_config
from pathgen.demo.generate import generate_one
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config)  # noqa: F821
generate_one(cfg, snakemake.wildcards.slide, snakemake.output.svs, snakemake.output.regions)  # noqa: F821

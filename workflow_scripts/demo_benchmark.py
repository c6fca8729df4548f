"""Snakemake script for rule demo_benchmark (logic: pathgen.demo.benchmark.demo_benchmark)."""

from pathlib import Path

from pathgen.config import validate_config
from pathgen.demo.benchmark import demo_benchmark
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
demo_benchmark(validate_config(snakemake.config), Path(snakemake.output.classes).parent)  # noqa: F821

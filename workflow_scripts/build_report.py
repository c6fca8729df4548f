"""Snakemake script for rule build_report (logic: pathgen.report)."""

from pathlib import Path

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.paths import Layout
from pathgen.report.build import build_report
from pathgen.report.cli import inputs_for
from pathgen.slides import list_slides

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config)  # noqa: F821
build_report(inputs_for(cfg, list(list_slides(cfg))), Path(snakemake.output[0]),  # noqa: F821
             Layout(cfg).report_dir / "figures")

"""Snakemake script for rule build_report (logic: pathgen.report)."""

from pathlib import Path

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.paths import Layout
from pathgen.report.build import build_report
from pathgen.report.cli import inputs_for
from pathgen.slides import list_slides

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config)
chunk_files = [f for f in sm.input if Path(f).parent.name == "chunks" and f.endswith(".json")]
build_report(inputs_for(cfg, list(list_slides(cfg)), chunk_files=chunk_files), Path(sm.output[0]),
             Layout(cfg).report_figures_dir)

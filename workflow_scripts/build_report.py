"""Snakemake script for rule build_report (logic: pathgen.report.build, inputs: pathgen.report.workflow).

The settings shown, the slides, their QC images and the stages' folders come from params.report
(pathgen.report.workflow.report_params, the rerun trigger), the chunk outcome files from the
input; the whole config is never read."""

from pathlib import Path

from pathgen.logs import setup_logging
from pathgen.report.build import build_report
from pathgen.report.workflow import report_inputs

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
p = sm.params.report
chunk_files = [f for f in sm.input if Path(f).parent.name == "chunks" and f.endswith(".json")]
build_report(report_inputs(p["config"], p["slides"], p["dirs"], p["qc_images"], chunk_files), Path(sm.output[0]),
             Path(p["figures_dir"]))
